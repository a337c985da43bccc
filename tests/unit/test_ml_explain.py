"""Explanations from the ONNX graph: exact additivity on hand-built and fitted models."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cut_processes.ml import registry
from cut_processes.ml.explain import UnsupportedModelError, explainer_for
from cut_processes.ml.export import to_onnx, write_model

ML = "ai.onnx.ml"


def _tree_model(op: str, n_features: int, attrs: dict, outputs: list) -> bytes:
    node = helper.make_node(op, ["input"], [o.name for o in outputs], domain=ML, **attrs)
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n_features])],
        outputs,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)]
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_regressor() -> bytes:
    """Two trees over 3 features, base value 0.5.

    tree 0: x0 <= 1 ? 4.0 : (x1 <= 0 ? -1.0 : 3.0)  hit rates 10 -> 6 | 4 -> 1 | 3
    tree 1: x2 < 5 ? 1.0 : 0.0                       hit rates 10 -> 5 | 5
    Expected values: tree 0 root (6*4 + 4*2)/10 = 3.2 (its right child (1*-1 + 3*3)/4 = 2),
    tree 1 root 0.5; bias 3.2 + 0.5 + 0.5 = 4.2.
    """
    attrs = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 0, 1, 0, 0, 2, 0, 0],
        nodes_values=[1.0, 0, 0.0, 0, 0, 5.0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF",
                     "BRANCH_LT", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 3, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 0, 4, 0, 0, 2, 0, 0],
        nodes_hitrates=[10.0, 6, 4, 1, 3, 10, 5, 5],
        target_treeids=[0, 0, 0, 1, 1],
        target_nodeids=[1, 3, 4, 1, 2],
        target_ids=[0, 0, 0, 0, 0],
        target_weights=[4.0, -1.0, 3.0, 1.0, 0.0],
        n_targets=1,
        base_values=[0.5],
        post_transform="NONE",
        aggregate_function="SUM",
    )  # fmt: skip
    out = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
    return _tree_model("TreeEnsembleRegressor", 3, attrs, out)


def tiny_classifier() -> bytes:
    """Two trees over 2 features, classes 3, 4, 5 (leaf weights = probability / 2).

    tree 0: x0 <= 0.5 ? [.5, 0, 0] : [0, .25, .25]     hit rates 8 -> 4 | 4
    tree 1: x1 <= 0   ? [0, .5, 0] : [.1, .1, .3]      hit rates 8 -> 2 | 6
    Roots: [.25, .125, .125] and [.075, .2, .225]; bias [.325, .325, .35].
    """
    attrs = dict(
        nodes_treeids=[0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 0, 1, 2],
        nodes_featureids=[0, 0, 0, 1, 0, 0],
        nodes_values=[0.5, 0, 0, 0.0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 0, 0, 2, 0, 0],
        nodes_hitrates=[8.0, 4, 4, 8, 2, 6],
        class_treeids=[0, 0, 0, 1, 1, 1, 1],
        class_nodeids=[1, 2, 2, 1, 2, 2, 2],
        class_ids=[0, 1, 2, 1, 0, 1, 2],
        class_weights=[0.5, 0.25, 0.25, 0.5, 0.1, 0.1, 0.3],
        classlabels_int64s=[3, 4, 5],
        post_transform="NONE",
    )  # fmt: skip
    out = [
        helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3]),
    ]
    return _tree_model("TreeEnsembleClassifier", 2, attrs, out)


def _run(onnx_bytes: bytes, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": np.asarray(X, dtype=np.float32)})


def test_hand_built_regressor_contributions_by_hand():
    onnx_bytes = tiny_regressor()
    X = np.array([[0.5, 7.0, 2.0], [2.0, -1.0, 9.0]], dtype=np.float32)
    c = explainer_for(onnx.load_from_string(onnx_bytes)).contributions(X)
    np.testing.assert_allclose(c.bias[:, 0], [4.2, 4.2])
    np.testing.assert_allclose(c.values[:, :, 0], [[0.8, 0.0, 0.5], [-1.2, -3.0, -0.5]])
    (variable,) = _run(onnx_bytes, X)
    np.testing.assert_allclose(c.score[:, 0], variable.ravel(), atol=1e-6)
    assert c.space == "prediction"


def test_hand_built_regressor_is_additive_on_random_rows():
    onnx_bytes = tiny_regressor()
    X = np.random.default_rng(1).normal(scale=4, size=(500, 3)).astype(np.float32)
    X[:10, 0] = 1.0  # exactly on a threshold: <= must go left, as onnxruntime does
    X[10:20, 2] = 5.0
    c = explainer_for(onnx.load_from_string(onnx_bytes)).contributions(X)
    (variable,) = _run(onnx_bytes, X)
    np.testing.assert_allclose(c.bias[:, 0] + c.values[:, :, 0].sum(axis=1), variable.ravel(),
                               atol=1e-6)  # fmt: skip


def test_hand_built_classifier_contributions_per_class():
    onnx_bytes = tiny_classifier()
    X = np.array([[0.0, 1.0]], dtype=np.float32)
    explainer = explainer_for(onnx.load_from_string(onnx_bytes))
    c = explainer.contributions(X)
    assert explainer.outputs == [3, 4, 5]
    np.testing.assert_allclose(c.bias[0], [0.325, 0.325, 0.35])
    np.testing.assert_allclose(c.values[0], [[0.25, -0.125, -0.125], [0.025, -0.1, 0.075]])
    label, probabilities = _run(onnx_bytes, X)
    np.testing.assert_allclose(probabilities[0], [0.6, 0.1, 0.3], atol=1e-6)
    assert label[0] == 3
    X = np.random.default_rng(2).normal(size=(400, 2)).astype(np.float32)
    label, probabilities = _run(onnx_bytes, X)
    c = explainer.contributions(X)
    np.testing.assert_allclose(c.score, probabilities, atol=1e-6)  # every class column
    predicted = np.searchsorted([3, 4, 5], label)
    rows = np.arange(len(X))
    np.testing.assert_allclose(
        c.bias[rows, predicted] + c.values[rows, :, predicted].sum(axis=1),
        probabilities[rows, predicted],
        atol=1e-6,
    )


def test_loaded_model_explains_the_predicted_class(tmp_path, monkeypatch):
    monkeypatch.setenv("CUT_MODELS_DIR", str(tmp_path))
    registry.clear_cache()
    write_model(tmp_path, "tiny-classes", tiny_classifier(),
                {"version": "1", "task": "classification", "features": ["x0", "x1"],
                 "labels": [3, 4, 5]})  # fmt: skip
    model = registry.get_model("tiny-classes")
    assert model.explain(np.array([[0.0, 1.0]]), top=2) == [
        [("x0", pytest.approx(0.25)), ("x1", pytest.approx(0.025))]
    ]
    # Explaining another class on request (a caller that reports a different count).
    [[(first, weight), _]] = model.explain(np.array([[0.0, 1.0]]), top=2, classes=[5])
    assert (first, weight) == ("x0", pytest.approx(-0.125))
    with pytest.raises(ValueError, match="not a label"):
        model.explain(np.array([[0.0, 1.0]]), classes=[9])
    registry.clear_cache()


RNG = np.random.default_rng(5)
X = RNG.normal(size=(300, 4)).astype(np.float32)
Y3 = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.7])
Y2 = (X[:, 2] > 0.2).astype(int)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "estimator, y",
    [
        (RandomForestClassifier(n_estimators=10, random_state=0), Y3),
        (RandomForestClassifier(n_estimators=10, random_state=0), Y2),
        (GradientBoostingClassifier(n_estimators=10, random_state=0), Y3),
        (GradientBoostingClassifier(n_estimators=10, random_state=0), Y2),
        (LogisticRegression(), Y3),
    ],
    ids=["forest-3", "forest-2", "boosting-3", "boosting-2", "logistic-3"],
)
def test_fitted_classifiers_add_up_in_their_score_space(estimator, y):
    estimator.fit(X, y)
    onnx_bytes = to_onnx(estimator, 4, classifier=True)
    c = explainer_for(onnx.load_from_string(onnx_bytes)).contributions(X)
    _, probabilities = _run(onnx_bytes, X)
    if c.space == "probability":
        got = c.score
    elif c.space.startswith("log-odds"):
        got = _softmax(c.score)
    else:  # binary boosting: one logit, onnxruntime's [1 - p, p]
        got = 1 / (1 + np.exp(-c.score))
    np.testing.assert_allclose(got, probabilities, atol=1e-5)


def test_linear_contributions_are_coefficient_times_value():
    pipeline = make_pipeline(StandardScaler(), Ridge()).fit(X, X[:, 0] * 2 + X[:, 1])
    onnx_bytes = to_onnx(pipeline, 4, classifier=False)
    c = explainer_for(onnx.load_from_string(onnx_bytes)).contributions(X)
    scaler, ridge = pipeline.steps[0][1], pipeline.steps[1][1]
    expected = (X - scaler.mean_) / scaler.scale_ * ridge.coef_
    np.testing.assert_allclose(c.values[:, :, 0], expected, atol=1e-4)
    (variable,) = _run(onnx_bytes, X)
    np.testing.assert_allclose(c.score[:, 0], variable.ravel(), atol=1e-4)


def test_unsupported_graph_is_refused():
    node = helper.make_node("Relu", ["input"], ["variable"])
    graph = helper.make_graph(
        [node], "relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2])],
    )  # fmt: skip
    with pytest.raises(UnsupportedModelError, match="Relu"):
        explainer_for(helper.make_model(graph))
