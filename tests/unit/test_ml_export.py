"""scikit-learn -> ONNX export, agreement checks, deterministic model files, trainers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from sklearn.ensemble import ExtraTreesClassifier, RandomForestRegressor

from cut_processes.ml import training
from cut_processes.ml.export import check_agreement, to_onnx, write_model

RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, 6)).astype(np.float32)
Y_REG = X[:, 0] * 3 - X[:, 1] * X[:, 2]
Y_CLS = np.digitize(X[:, 0] + 0.5 * X[:, 3], [-1.0, -0.2, 0.4, 1.1]) + 2  # 5 classes, 2..6


def _session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


def test_regressor_agrees_with_onnxruntime():
    model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, Y_REG)
    onnx_bytes = to_onnx(model, 6, classifier=False)
    session = _session(onnx_bytes)
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["variable"]
    assert check_agreement(model, onnx_bytes, X) < 1e-4


def test_classifier_agrees_and_has_no_zipmap():
    model = ExtraTreesClassifier(n_estimators=30, random_state=0).fit(X, Y_CLS)
    onnx_bytes = to_onnx(model, 6, classifier=True)
    session = _session(onnx_bytes)
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    _, probabilities = session.run(None, {"input": X})
    assert probabilities.shape == (300, 5)  # a tensor, not a list of dicts (zipmap off)
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5)
    assert check_agreement(model, onnx_bytes, X) == 1.0
    fresh = RNG.normal(size=(200, 6)).astype(np.float32)
    assert check_agreement(model, onnx_bytes, fresh) >= 0.99  # float32 ties may differ


def test_tree_nodes_carry_the_training_sample_counts():
    model = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(X, Y_REG)
    graph = onnx.load_from_string(to_onnx(model, 6, classifier=False)).graph
    attrs = {a.name: helper.get_attribute_value(a) for a in graph.node[0].attribute}
    trees, nodes = np.array(attrs["nodes_treeids"]), np.array(attrs["nodes_nodeids"])
    hitrates = np.array(attrs["nodes_hitrates"])
    for t, estimator in enumerate(model.estimators_):
        mine = trees == t
        expected = estimator.tree_.weighted_n_node_samples[nodes[mine]]
        np.testing.assert_allclose(hitrates[mine], expected)


def test_write_model_is_deterministic_and_complete(tmp_path):
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, Y_REG)
    features = [{"name": f"f{i}", "meaning": "x", "unit": "-"} for i in range(6)]
    fields = {"version": "1.2.3", "task": "regression", "seed": 11, "features": features}
    card = write_model(tmp_path / "a", "demo-model", to_onnx(model, 6, classifier=False), fields)
    again = write_model(tmp_path / "b", "demo-model", to_onnx(model, 6, classifier=False), fields)
    for name in ("demo-model.onnx", "demo-model.card.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    onnx_bytes = (tmp_path / "a" / "demo-model.onnx").read_bytes()
    raw = json.loads((tmp_path / "a" / "demo-model.card.json").read_text(encoding="utf-8"))
    assert raw["sha256"] == hashlib.sha256(onnx_bytes).hexdigest() == card.sha256 == again.sha256
    assert set(raw["libraries"]) == {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy"}
    assert raw["reproduce"] == {"command": "cut-twin train demo-model", "seed": 11}
    assert raw["id"] == card.id == "demo-model" and card.version == "1.2.3"
    assert "trained_at" not in raw
    with pytest.raises(ValueError, match="lacks task"):
        write_model(tmp_path / "c", "x", onnx_bytes, {"version": "1", "features": ["a"]})


def test_unknown_model_id_lists_the_known_ones():
    with pytest.raises(training.UnknownModelIdError) as err:
        training.train("no-such-model")
    assert "'no-such-model'" in str(err.value)
    assert "floor-count-facade" in str(err.value)
    assert "floor-count-facade" in training.known_models()


def test_registered_trainer_is_called_with_data_and_out_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "TRAINERS", dict(training.TRAINERS))
    seen = {}

    @training.register_trainer("tiny-test-model")
    def _train(data, out_dir):
        seen.update(data=data, out_dir=out_dir)
        model = RandomForestRegressor(n_estimators=2, random_state=0).fit(X, Y_REG)
        fields = {"version": "0.0.1", "task": "regression", "features": ["a"] * 6, "seed": 0}
        return write_model(out_dir, "tiny-test-model", to_onnx(model, 6, classifier=False), fields)

    card = training.train("tiny-test-model", data=tmp_path / "data", out_dir=tmp_path / "out")
    assert seen == {"data": tmp_path / "data", "out_dir": tmp_path / "out"}
    assert card.id == "tiny-test-model"
    assert (tmp_path / "out" / "tiny-test-model.onnx").is_file()
