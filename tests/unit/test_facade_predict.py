"""The shipped facade model through its public doors: predict_storeys and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cut_processes.analysis.facades import FEATURE_NAMES, facade_feature_matrix
from cut_processes.cli import main
from cut_processes.ml import registry
from cut_processes.ml.facade import MODEL_ID, decide, explain_confidence, predict_storeys


@pytest.fixture(autouse=True)
def shipped_models(monkeypatch):
    monkeypatch.delenv("CUT_MODELS_DIR", raising=False)
    registry.clear_cache()
    yield
    registry.clear_cache()


def drawn_facade(rows: int, height: int = 420, width: int = 360) -> np.ndarray:
    img = np.full((height, width), 0.8, dtype=np.float32)
    period = height / rows
    for r in range(rows):
        y0, y1 = int((r + 0.3) * period), int((r + 0.75) * period)
        for c in range(5):
            img[y0:y1, int((c + 0.25) * width / 5) : int((c + 0.75) * width / 5)] = 0.15
    return img


def test_decide_answers_the_count_with_most_probability_within_one():
    labels = [6, 3, 4, 5]  # any column order
    probabilities = np.array(
        [
            [0.4, 0.1, 0.2, 0.3],  # 3:.1 4:.2 5:.3 6:.4 -> 5 holds .9 within one
            [0.1, 0.6, 0.2, 0.1],  # most probable 3, but 4 holds .9 within one
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    storeys, confidence, low, high, probability = decide(probabilities, labels)
    assert storeys.tolist() == [5, 4, 4]
    np.testing.assert_allclose(confidence, [0.9, 0.9, 1.0])
    np.testing.assert_allclose(probability, [0.3, 0.2, 1.0])
    assert low.tolist() == [4, 3, 4] and high.tolist() == [6, 4, 4]  # >= 80 % of the mass


def test_shipped_model_counts_drawn_facades():
    rows = [2, 3, 4, 5, 6, 8]
    result = predict_storeys([drawn_facade(n) for n in rows], explain=3)
    assert np.all(np.abs(result.storeys - np.array(rows)) <= 1), result.storeys
    assert np.all((result.low <= result.storeys) & (result.storeys <= result.high))
    assert np.all((result.confidence > 0) & (result.confidence <= 1 + 1e-9))
    assert np.all(result.probability <= result.confidence + 1e-9)
    assert len(result.explanation) == len(rows)
    for factors in result.explanation:
        assert len(factors) == 3 and all(name in FEATURE_NAMES for name, _ in factors)
        weights = [abs(w) for _, w in factors]
        assert weights == sorted(weights, reverse=True)


def test_explanation_adds_up_to_the_confidence():
    model = registry.get_model(MODEL_ID)
    X = facade_feature_matrix([drawn_facade(n) for n in (3, 5, 7)])
    result = predict_storeys([drawn_facade(n) for n in (3, 5, 7)])
    contributions = model.contributions(X)
    labels = np.asarray(model.card.labels)
    near = np.abs(labels[None, :] - result.storeys[:, None]) <= 1
    total = (contributions.bias * near).sum(axis=1) + np.einsum(
        "rfl,rl->r", contributions.values, near.astype(float)
    )
    np.testing.assert_allclose(total, result.confidence, atol=1e-5)
    everything = explain_confidence(model, X, result.storeys, top=len(FEATURE_NAMES))
    explained = [sum(w for _, w in row) for row in everything]
    np.testing.assert_allclose(
        np.array(explained) + (contributions.bias * near).sum(axis=1), result.confidence, atol=1e-5
    )


def test_shipped_card_describes_the_model():
    card = registry.get_model(MODEL_ID).card
    assert card.features == list(FEATURE_NAMES)
    assert 0 < card.review_threshold < 1
    raw = card.raw
    for key in ("description", "training_data", "metrics", "baseline", "intended_use",
                "limits", "libraries", "labels"):  # fmt: skip
        assert raw[key], key
    split = raw["training_data"]["cmp"]["split"]
    assert len(split["train"]) == 200 and len(split["test"]) == 100
    assert raw["metrics"]["cmp_test"]["model"]["within_one"] >= 0.85
    assert raw["file"]["size_bytes"] < 5_000_000


def test_predict_storeys_needs_pictures():
    with pytest.raises(ValueError, match="no pictures"):
        predict_storeys([])


def test_cli_rejects_unknown_model_ids():
    runner = CliRunner()
    result = runner.invoke(main, ["train", "no-such-model"])
    assert result.exit_code == 2
    assert "no-such-model" in result.output and "floor-count-facade" in result.output
    result = runner.invoke(main, ["evaluate", "no-such-model"])
    assert result.exit_code == 2 and "floor-count-facade" in result.output
