"""``/models`` and ``/models/{id}``: the model cards of every AI process, as JSON.

Cards say what each model does, which data gave which metric, its limits and its review
threshold (the cities' AI guidelines ask for this transparency). Process descriptions link
here; ``$CUT_MODELS_DIR`` cards override or add to the shipped ones.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify


def install(app: Flask, base_url: str) -> None:
    """Register the read-only model card routes."""
    from cut_processes.ml.registry import ModelNotFoundError, card_document, list_cards

    base = base_url.rstrip("/")

    @app.get("/models")
    def _models() -> Response:
        cards = list_cards()
        return jsonify({
            "models": [
                {
                    "id": card.id,
                    "version": card.version,
                    "task": card.raw.get("task"),
                    "review_threshold": card.raw.get("review_threshold"),
                    "links": [{"rel": "describedby", "type": "application/json",
                               "href": f"{base}/models/{card.id}"}],
                }
                for card in cards
            ],
            "links": [{"rel": "self", "type": "application/json", "href": f"{base}/models"}],
        })

    @app.get("/models/<model_id>")
    def _model(model_id: str) -> Response:
        try:
            document = card_document(model_id)
        except ModelNotFoundError:
            response = jsonify({
                "type": "http://www.opengis.net/def/exceptions/ogcapi-common-1/1.0/not-found",
                "title": "Not Found",
                "status": 404,
                "detail": f"no model {model_id!r}; GET {base}/models lists the models",
            })
            response.status_code = 404
            return response
        document.setdefault("links", []).append(
            {"rel": "self", "type": "application/json", "href": f"{base}/models/{model_id}"}
        )
        return jsonify(document)
