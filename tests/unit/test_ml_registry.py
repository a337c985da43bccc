"""The model registry: lookup order, sha256 verification, session cache, cards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from cut_processes.ml import registry
from cut_processes.ml.export import to_onnx, write_model
from cut_processes.ml.registry import (
    ModelIntegrityError,
    ModelNotFoundError,
    card_document,
    get_model,
    list_cards,
    models_dirs,
)

FEATURES = [
    {"name": "height_m", "meaning": "height", "unit": "m"},
    {"name": "area_m2", "meaning": "footprint area", "unit": "m2"},
    {"name": "year", "meaning": "year built", "unit": "year"},
]


def _tiny_model(out_dir: Path, model_id: str, *, version: str = "0.1.0", seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = 2 * X[:, 0] - X[:, 1]
    estimator = RandomForestRegressor(n_estimators=4, max_depth=3, random_state=seed).fit(X, y)
    onnx_bytes = to_onnx(estimator, 3, classifier=False)
    card = write_model(
        out_dir,
        model_id,
        onnx_bytes,
        {"version": version, "task": "regression", "features": FEATURES,
         "review_threshold": 0.6, "seed": seed},
    )  # fmt: skip
    return estimator, card, X


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    """An empty $CUT_MODELS_DIR and a clean session cache."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("CUT_MODELS_DIR", str(folder))
    registry.clear_cache()
    yield folder
    registry.clear_cache()


def test_models_dirs_puts_the_environment_first(models_dir, tmp_path, monkeypatch):
    assert models_dirs() == [models_dir, registry.PACKAGE_MODELS_DIR]
    other = tmp_path / "other"
    monkeypatch.setenv("CUT_MODELS_DIR", f"{models_dir}:{other}")
    assert models_dirs() == [models_dir, other, registry.PACKAGE_MODELS_DIR]
    monkeypatch.delenv("CUT_MODELS_DIR")
    assert models_dirs() == [registry.PACKAGE_MODELS_DIR]


def test_get_model_runs_and_describes_itself(models_dir):
    estimator, card, X = _tiny_model(models_dir, "tiny-height")
    model = get_model("tiny-height")
    out = model.run(X)
    assert set(out) == {"variable"}
    np.testing.assert_allclose(out["variable"].ravel(), estimator.predict(X), atol=1e-5)
    assert model.ref == "tiny-height@0.1.0"
    assert model.card.features == ["height_m", "area_m2", "year"]
    assert model.card.review_threshold == 0.6
    assert model.card.task == "regression"
    assert model.provenance == {
        "id": "tiny-height",
        "version": "0.1.0",
        "sha256": card.sha256,
        "card": "/models/tiny-height",
    }


def test_sessions_are_cached_per_process(models_dir):
    _tiny_model(models_dir, "tiny-height")
    first = get_model("tiny-height")
    assert get_model("tiny-height") is first
    registry.clear_cache()
    assert get_model("tiny-height") is not first


def test_sha256_mismatch_is_refused_with_file_and_both_digests(models_dir):
    _, card, _ = _tiny_model(models_dir, "tiny-height")
    onnx_file = models_dir / "tiny-height.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError) as err:
        get_model("tiny-height")
    message = str(err.value)
    assert str(onnx_file) in message
    assert f"expected {card.sha256}" in message
    assert "actual " in message and err.value.actual != card.sha256
    assert err.value.expected == card.sha256


def test_unknown_id_names_the_id_and_the_folders(models_dir):
    with pytest.raises(ModelNotFoundError) as err:
        get_model("no-such-model")
    assert "'no-such-model'" in str(err.value)
    assert str(models_dir) in str(err.value)
    assert str(registry.PACKAGE_MODELS_DIR) in str(err.value)
    with pytest.raises(ModelNotFoundError):
        get_model("../models/floor-count-facade")


def test_models_dir_overrides_a_shipped_model(models_dir):
    shipped = card_document("floor-count-facade")
    assert shipped["source"] == "shipped"
    _tiny_model(models_dir, "floor-count-facade", version="9.9.9")
    assert get_model("floor-count-facade").ref == "floor-count-facade@9.9.9"
    document = card_document("floor-count-facade")
    assert document["source"] == "local" and document["version"] == "9.9.9"
    ids = [c.id for c in list_cards()]
    assert ids == sorted(ids) and ids.count("floor-count-facade") == 1
    local = next(c for c in list_cards() if c.id == "floor-count-facade")
    assert local.version == "9.9.9"


def test_list_cards_skips_unreadable_cards(models_dir):
    _tiny_model(models_dir, "tiny-height")
    (models_dir / "broken.card.json").write_text("{not json", encoding="utf-8")
    (models_dir / "broken.onnx").write_bytes(b"x")
    ids = [c.id for c in list_cards()]
    assert "tiny-height" in ids and "broken" not in ids


def test_card_document_is_a_copy_without_paths(models_dir):
    _tiny_model(models_dir, "tiny-height")
    document = card_document("tiny-height")
    document["version"] = "changed"
    assert card_document("tiny-height")["version"] == "0.1.0"
    assert str(models_dir) not in json.dumps(card_document("tiny-height"))
    with pytest.raises(ModelNotFoundError):
        card_document("nope")


def test_run_refuses_a_wrong_number_of_features(models_dir):
    _tiny_model(models_dir, "tiny-height")
    model = get_model("tiny-height")
    with pytest.raises(ValueError, match="3 feature columns"):
        model.run(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="3 feature columns"):
        model.run(np.zeros(3, dtype=np.float32))


def test_card_naming_another_id_is_refused(models_dir):
    _tiny_model(models_dir, "tiny-height")
    card = json.loads((models_dir / "tiny-height.card.json").read_text(encoding="utf-8"))
    card["id"] = "other"
    (models_dir / "tiny-height.card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="names id 'other'"):
        get_model("tiny-height")
