"""From a fitted scikit-learn estimator to a shipped model: ONNX bytes and a model card.

* :func:`to_onnx` converts with skl2onnx: one float32 input named ``input``, ``zipmap`` off
  (classifiers give ``label`` and a ``probabilities`` tensor), a fixed target opset, and the
  training sample counts of tree nodes written into the ``nodes_hitrates`` attribute (so
  explanations can weight tree nodes as scikit-learn saw them);
* :func:`check_agreement` compares scikit-learn and onnxruntime on the same rows;
* :func:`write_model` writes ``<id>.onnx`` and ``<id>.card.json`` deterministically (no
  timestamps: retraining with the same data, seed and libraries reproduces both files).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from cut_processes.ml.registry import ModelCard

#: ONNX opsets every shipped model targets (ai.onnx.ml 3: TreeEnsemble*/Linear* operators).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
#: Libraries whose versions a card records.
LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")
_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")


def _final_estimator(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def to_onnx(estimator: Any, n_features: int, *, classifier: bool) -> bytes:
    """Serialised ONNX model of a fitted estimator (or Pipeline) over ``n_features`` floats.

    :param classifier: True for classifiers (outputs ``label``, ``probabilities``), False for
        regressors (output ``variable``).
    """
    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    final = _final_estimator(estimator)
    options = {id(final): {"zipmap": False}} if classifier else None
    model = skl_to_onnx(
        estimator,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        options=options,
    )
    _write_tree_hitrates(model, final)
    _drop_zero_class_weights(model)
    return model.SerializeToString()


def _sklearn_trees(estimator: Any) -> list[Any]:
    """The ``tree_`` objects of a tree model, in the order skl2onnx numbers the trees."""
    if hasattr(estimator, "tree_"):
        return [estimator.tree_]
    members = getattr(estimator, "estimators_", None)
    if members is None:
        return []
    flat = np.asarray(members, dtype=object).ravel()  # GradientBoosting: stages x classes
    return [m.tree_ for m in flat if hasattr(m, "tree_")]


def _write_tree_hitrates(model: Any, estimator: Any) -> None:
    """Set ``nodes_hitrates`` of the tree ensemble to the trees' weighted sample counts.

    Left unchanged (all 1.0 from skl2onnx) when the ONNX trees cannot be matched one to one
    with the estimator's trees; explanations then weight both children of a node equally.
    """
    from onnx import helper

    trees = _sklearn_trees(estimator)
    node = next((n for n in model.graph.node if n.op_type in _TREE_OPS), None)
    if node is None or not trees:
        return
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    tree_ids = np.asarray(attrs["nodes_treeids"])
    node_ids = np.asarray(attrs["nodes_nodeids"])
    features = np.asarray(attrs["nodes_featureids"])
    if tree_ids.size == 0 or tree_ids.max() + 1 != len(trees):
        return
    hitrates = np.empty(tree_ids.size, dtype=np.float32)
    for t, tree in enumerate(trees):
        mine = tree_ids == t
        ids = node_ids[mine]
        if ids.max(initial=-1) >= tree.node_count or len(ids) != tree.node_count:
            return
        inner = tree.children_left[ids] >= 0
        if not np.array_equal(features[mine][inner], tree.feature[ids][inner]):
            return
        hitrates[mine] = tree.weighted_n_node_samples[ids]
    for attr in node.attribute:
        if attr.name == "nodes_hitrates":
            del attr.floats[:]
            attr.floats.extend(hitrates.tolist())
            return


def _drop_zero_class_weights(model: Any) -> None:
    """Remove the zero leaf weights skl2onnx writes for every class of every leaf.

    A multiclass forest leaf is mostly pure, so this shrinks the file several times without
    changing any output (the operator sums the weights a leaf lists). Binary models are left
    alone: onnxruntime's binary convention depends on which class ids are listed.
    """
    from onnx import helper

    for node in model.graph.node:
        if node.op_type != "TreeEnsembleClassifier":
            continue
        attrs = {a.name: a for a in node.attribute}
        labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings")
        n_labels = len(labels.ints) + len(labels.strings) if labels is not None else 0
        if n_labels <= 2 or "class_weights" not in attrs:
            continue
        keep = np.asarray(attrs["class_weights"].floats, dtype=np.float32) != 0
        for name in ("class_ids", "class_nodeids", "class_treeids", "class_weights"):
            values = np.asarray(helper.get_attribute_value(attrs[name]))[keep].tolist()
            attr = attrs[name]
            if name == "class_weights":
                del attr.floats[:]
                attr.floats.extend(values)
            else:
                del attr.ints[:]
                attr.ints.extend(values)


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


def check_agreement(estimator: Any, onnx_bytes: bytes, X: np.ndarray) -> float:
    """How well onnxruntime reproduces scikit-learn on the rows ``X``.

    :returns: for classifiers the share of rows with the same label (1.0 = all), for
        regressors the largest absolute difference of the predictions.
    """
    import onnxruntime as ort

    X32 = np.ascontiguousarray(X, dtype=np.float32)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {"input": X32}), strict=True)
    )
    expected = estimator.predict(X32)
    if _is_classifier(estimator):
        return float(np.mean(np.asarray(outputs["label"]).ravel() == np.asarray(expected).ravel()))
    got = np.asarray(outputs["variable"], dtype=np.float64).reshape(np.shape(expected))
    return float(np.max(np.abs(got - expected))) if got.size else 0.0


def library_versions() -> dict[str, str]:
    """Installed versions of :data:`LIBRARIES`."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            found[name] = "not installed"
    return found


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(content)
    tmp.replace(path)


def write_model(
    out_dir: str | Path, model_id: str, onnx_bytes: bytes, card_fields: dict[str, Any]
) -> ModelCard:
    """Write ``<out_dir>/<model_id>.onnx`` and ``<model_id>.card.json``; return the card.

    ``card_fields`` holds everything the card says about the model (at least ``version``,
    ``task`` and ``features``; a ``seed`` is recorded under ``reproduce``). Added here:
    ``id``, ``sha256`` and size of the ONNX file, ``libraries`` (versions) and
    ``reproduce`` (command and seed). No timestamp, so the same inputs give the same bytes.
    """
    missing = [k for k in ("version", "task", "features") if k not in card_fields]
    if missing:
        raise ValueError(f"card_fields lacks {', '.join(missing)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fields = dict(card_fields)
    seed = fields.pop("seed", None)
    card: dict[str, Any] = {"id": model_id, **fields}
    card["sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
    card["file"] = {"name": f"{model_id}.onnx", "size_bytes": len(onnx_bytes)}
    card["libraries"] = library_versions()
    card["reproduce"] = {"command": f"cut-twin train {model_id}", "seed": seed}
    text = json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _write_atomically(out / f"{model_id}.onnx", onnx_bytes)
    _write_atomically(out / f"{model_id}.card.json", text.encode("utf-8"))
    return ModelCard.from_dict(card)
