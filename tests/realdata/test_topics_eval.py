"""The quality bars of contribution-topics on the real CIMT data, through `cut-twin evaluate`.

Each bar is measured against its baseline in the same run (TF-IDF word 1-2 grams, sublinear
tf + linear SVM; k-means on TF-IDF for discovery). Also checks that the shipped models agree
with what their cards say.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cut_processes.cli import main

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def metrics(io_shared_data):
    result = CliRunner().invoke(
        main, ["evaluate", "contribution-topics", "--data",
               str(io_shared_data / "participation")])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_across_proceedings_bonn_to_moers_beats_the_baseline(metrics):
    bm = metrics["cycling"]["bonn_to_moers"]
    assert bm["test"] == 459 and bm["train"] == 2314
    assert bm["macro_f1"] >= bm["baseline"]["macro_f1"] + 0.05
    assert bm["bar"]["holds"] is True


def test_ottensen_cross_validation_beats_the_baseline(metrics):
    cv = metrics["ottensen_cv"]
    assert cv["folds"] == 5 and cv["documents"] == 483
    assert cv["micro_f1"] >= cv["baseline"]["micro_f1"] + 0.03
    assert 0 < cv["macro_f1"] <= 1 and cv["baseline"]["macro_f1"] > 0


def test_moderator_curve_is_reported_and_50_labels_help(metrics):
    curve = metrics["cycling"]["moderator_curve"]
    points = {p["moers_labels"]: p for p in curve["points"]}
    assert sorted(points) == [0, 25, 50, 100]
    assert points[50]["macro_f1"] > points[0]["macro_f1"]


def test_discovery_matches_annotations_better_than_kmeans(metrics):
    found = metrics["discover_ottensen"]
    assert found["topics"] == 12 and len(found["topics_found"]) == 12
    assert found["nmi"] > found["baseline"]["nmi"]
    assert found["seconds"] < 10


@pytest.mark.parametrize("model_id", ["dipas-mobility-topics", "cycling-dialogue-categories"])
def test_shipped_models_load_and_agree_with_their_training(io_shared_data, model_id):
    from cut_processes.ml import topics as ml_topics

    model, loaded = ml_topics.shipped_model(model_id)
    corpus = (ml_topics.load_ottensen if model_id == ml_topics.OTTENSEN_MODEL
              else ml_topics.load_cycling)(io_shared_data / "participation")
    assert loaded.card.raw["labels"] == corpus.labels  # the datasets' own label names
    sample = corpus.texts[:200]
    fitted = ml_topics.fit_topics(corpus.texts, corpus.targets, corpus.labels,
                                  multilabel=corpus.multilabel)
    onnx_p = model.probabilities(model.preprocess(sample))
    # retraining reproduces the shipped model (fixed seeds)
    assert np.abs(onnx_p - fitted.probabilities(sample)).max() < 1e-3
    assert "metrics" in loaded.card.raw and loaded.card.raw["training_data"]["licence"]
