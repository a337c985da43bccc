"""Models: registry and ONNX sessions, explanations, export, training pipelines.

``registry`` (get_model, list_cards, card_document), ``explain`` (contributions from the ONNX
graph), ``export`` (scikit-learn -> ONNX + model card), ``training`` (``cut-twin train`` and
``evaluate``), and one module per shipped model (``facade``, ``floor_height``, ``topics``).
See ``docs/models.md``.
"""
