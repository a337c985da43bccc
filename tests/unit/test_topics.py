"""German preprocessing, compound splitting, topic models (ONNX = scikit-learn), discovery."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from cut_processes.analysis import topics
from cut_processes.analysis.german import Lexicon, clean, looks_german, preprocess, words
from cut_processes.ml import topics as ml_topics

CYCLING = [
    "Der Radweg an der Hauptstraße ist viel zu schmal für Fahrräder.",
    "Radwege fehlen, Radfahrer müssen auf der Straße fahren.",
    "Bitte einen sicheren Radweg zur Schule bauen.",
    "Die Radwegbenutzungspflicht auf dem schmalen Radweg aufheben.",
    "Fahrradstellplätze am Bahnhof fehlen, Fahrräder stehen überall.",
    "Mehr Fahrradbügel und Abstellplätze für Fahrräder vor dem Markt.",
]
PARKING = [
    "Parkplätze fehlen, Autos parken auf dem Gehweg.",
    "Falschparker blockieren die Parkplätze vor der Apotheke.",
    "Anwohnerparken einführen, die Parkplätze sind immer voll.",
    "Parkende Autos auf dem Gehweg versperren den Weg.",
    "Parkhaus statt Parkplätze am Straßenrand.",
    "Zu viele Autos parken in zweiter Reihe.",
]


def test_tokens_keep_umlauts_and_sharp_s_and_drop_stopwords():
    assert words("Die Straße über den Brücken-Weg, größer!") == ["straße", "brücken", "weg",
                                                                 "größer"]


def test_html_is_removed():
    assert clean("<p>Mehr <b>Bäume</b> &amp; Bänke</p>") == "Mehr Bäume & Bänke"
    assert preprocess("<script>x</script><p>Bäume</p>") == preprocess("x Bäume")


def test_placeholders_are_not_features():
    assert preprocess("[NAME] [E-MAIL] Radweg") == preprocess("Radweg")


def test_compounds_split_into_known_parts():
    lexicon = Lexicon({"radweg": 5, "rad": 9, "weg": 7, "benutzung": 3, "pflicht": 4,
                       "parkplatz": 4, "park": 6, "platz": 8})
    parts = lexicon.split("radwegbenutzungspflicht")
    assert "radweg" in parts and "pflicht" in parts and "rad" in parts and "weg" in parts
    assert "benutzung" in parts
    # linking -s- and unknown words
    assert lexicon.split("parkplatzsuche") == ()
    assert lexicon.split("straße") == ()
    out = preprocess("Radwegbenutzungspflicht", lexicon).split()
    assert out[0] == "radwegbenutzungspflicht" and "pflicht" in out


def test_lexicon_learned_from_texts_and_round_trips():
    lexicon = Lexicon.learn(CYCLING + PARKING, min_count=2)
    assert "parkplätze" in lexicon.frequencies
    assert Lexicon.from_json(lexicon.to_json()).frequencies == lexicon.frequencies


@pytest.fixture(scope="module")
def fitted():
    texts = CYCLING + PARKING
    targets = np.array([[1, 0]] * len(CYCLING) + [[0, 1]] * len(PARKING))
    return ml_topics.fit_topics(texts, targets, ["cycling", "parking"], multilabel=False)


def test_onnx_model_agrees_with_scikit_learn_and_explains(fitted):
    model = ml_topics.TopicModel.from_fitted(fitted)
    texts = [*CYCLING, *PARKING, "Radweg und Parkplatz", "", "Hello world in English"]
    probs, tfidf = model.run(model.preprocess(texts))
    assert np.abs(probs - fitted.probabilities(texts)).max() < 1e-5
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert probs[0].argmax() == 0 and probs[len(CYCLING)].argmax() == 1
    terms = [e["term"] for e in model.explain(tfidf[0], 0)]
    assert "radweg" in terms
    assert model.explain(tfidf[len(CYCLING) + 3], 0) == []  # empty text: nothing drove it


def test_multilabel_onnx_uses_sigmoid_and_thresholds():
    texts = CYCLING + PARKING
    targets = np.array([[1, 0, 1]] * len(CYCLING) + [[0, 1, 1]] * len(PARKING))
    fitted = ml_topics.fit_topics(texts, targets, ["a", "b", "c"], multilabel=True)
    model = ml_topics.TopicModel.from_fitted(fitted)
    probs, _ = model.run(model.preprocess(texts))
    assert np.abs(probs - fitted.probabilities(texts)).max() < 1e-5
    assigned = ml_topics.assign(probs, model.thresholds, True)
    assert assigned[:, 2].all()  # a label every example carries
    assert assigned[0, 0] == 1 and assigned[-1, 1] == 1


def test_sublinear_tf_matches_scikit_learn_for_repeated_words(fitted):
    model = ml_topics.TopicModel.from_fitted(fitted)
    text = "Radweg Radweg Radweg Parkplätze"
    _, tfidf = model.run(model.preprocess([text]))
    expected = fitted.vectorizer.transform(model.preprocess([text])).toarray()
    assert np.abs(tfidf - expected).max() < 1e-6


def test_discover_separates_two_themes_and_names_them():
    texts = (CYCLING + PARKING) * 3
    found = topics.discover(texts, topic_count=2)
    assert found.topic_count == 2
    first, second = found.assignment[: len(CYCLING)], found.assignment[len(CYCLING):12]
    assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] != second[0]
    names = " ".join(topics.topic_name(k) for k in found.keywords)
    assert "park" in names and ("rad" in names or "fahrr" in names)
    assert (found.confidence > 0).all() and (found.confidence <= 1).all()


def test_discover_with_extra_stopwords_and_empty_texts():
    found = topics.discover(["", "   ", "<p></p>"], topic_count=3)
    assert found.topic_count == 0 and (found.assignment == -1).all()
    found = topics.discover((CYCLING + PARKING) * 2, topic_count=2, stopwords=["Parkplätze"])
    assert all("parkplätze" not in k for k in found.keywords)


def test_point_cluster_and_representatives():
    cluster = topics.point_cluster([shapely.Point(0, 0), None, shapely.Point(2, 4)])
    assert cluster == {"located": 2, "centroid": [1.0, 2.0], "bbox": [0.0, 0.0, 2.0, 4.0]}
    assert topics.point_cluster([None]) is None
    reps = topics.representatives(np.array([0, 2, 3]), np.array([0.1, 0.9, 0.5, 0.7]), 2)
    assert reps.tolist() == [3, 2]


def test_reference_labels_take_the_rarest():
    targets = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 0, 0]])
    assert topics.reference_labels(targets).tolist() == [1, 0, 2, -1]


def test_looks_german():
    assert looks_german("Der Radweg an der Hauptstraße ist viel zu schmal für Fahrräder.")
    assert not looks_german("The bike lanes are too narrow and cars park everywhere here.")
    assert looks_german("Radweg kaputt")  # too short to tell
