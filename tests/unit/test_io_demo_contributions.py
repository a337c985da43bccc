"""The generated citizen contributions of the demo district (layer and hidden truth)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fiona
import numpy as np
import pytest
from shapely import box
from shapely.geometry import LineString, shape

from cut_processes.demo.contributions import TOPICS, build_contributions
from cut_processes.demo.streets import Street
from cut_processes.io.dipas import CONTRIBUTION_FIELDS

BOX = box(561000, 5933000, 563500, 5935000)


@pytest.fixture(scope="module")
def layer(demo_dir: Path) -> list:
    with fiona.open(demo_dir / "district.gpkg", layer="contributions") as src:
        assert src.crs.to_epsg() == 25832
        return [(dict(f.properties), f.geometry) for f in src]


@pytest.fixture(scope="module")
def truth(demo_dir: Path) -> dict[str, dict]:
    with fiona.open(demo_dir / "district.gpkg", layer="contributions_truth") as src:
        return {f.properties["id"]: dict(f.properties) for f in src}


def test_layer_has_the_contributions_schema_and_is_marked_generated(layer, demo_dir):
    assert len(layer) == 300
    assert set(layer[0][0]) == set(CONTRIBUTION_FIELDS)
    ids = [p["id"] for p, _ in layer]
    assert len(set(ids)) == 300 and all(re.fullmatch(r"DEMO_BEITRAG_\d{4}", i) for i in ids)
    assert all(p["source"] == "generated: cut-twin demo (seed=42)" for p, _ in layer)
    assert all(p["topics"] is None for p, _ in layer), "topics are hidden truth"
    assert all(p["title"] and p["text"] and p["date_created"] for p, _ in layer)
    manifest = json.loads((demo_dir / "demo.json").read_text("utf-8"))
    assert manifest["counts"]["contributions"] == 300
    assert "district.gpkg#contributions_truth" in manifest["hidden_truth"]


def test_some_are_located_in_the_district_and_some_not(layer):
    located = [shape(g) for _, g in layer if g is not None]
    assert 0.5 < len(located) / len(layer) < 0.8
    assert all(g.geom_type == "Point" and BOX.contains(g) for g in located)


def test_german_planning_language(layer):
    texts = " ".join(p["title"] + " " + p["text"] for p, _ in layer)
    for word in ("Straßenbäume", "Radfahrstreifen", "Spielplatz", "Lärm", "Bushaltestelle", "ß"):
        assert word in texts
    categories = {p["category"] for p, _ in layer}
    assert {"Verkehr", "Grün und Freiraum", "Spielen und Freizeit", "Umwelt"} <= categories
    assert {p["contribution_type"] for p, _ in layer} <= {
        "Hinweis",
        "Idee",
        "Kritik",
        "Frage",
        "Lob",
    }


def test_hidden_truth_lists_topics_and_the_planted_personal_data(layer, truth):
    assert set(truth) == {p["id"] for p, _ in layer}
    topics = [json.loads(t["topics"]) for t in truth.values()]
    assert all(1 <= len(t) <= 2 and set(t) <= set(TOPICS) for t in topics)
    assert {t for ts in topics for t in ts} == set(TOPICS)
    assert 0.25 < sum(len(t) == 2 for t in topics) / len(topics) < 0.55
    texts = {p["id"]: p["text"] for p, _ in layer}
    planted = {i: json.loads(t["personal_data"]) for i, t in truth.items()}
    with_data = {i: kinds for i, kinds in planted.items() if kinds}
    assert len(with_data) == 12
    for cid, kinds in with_data.items():
        (kind,) = kinds
        pattern = {"email": r"[\w.-]+@example\.org", "phone": r"040 66969 \d{3}",
                   "name": r"Frau Müller|Herr Beispielmann"}[kind]  # fmt: skip
        assert re.search(pattern, texts[cid])
    others = " ".join(texts[i] for i in texts if i not in with_data)
    assert "@" not in others and "66969" not in others


def test_generation_is_deterministic_and_grammatical():
    streets = [
        Street(LineString([(561100, 5933100), (561600, 5933100)]), name, "residential", 2, 6, 15)
        for name in ("Jollenstraße", "Mühlenweg", "Am Kormoranhof")
    ]
    a = build_contributions(streets, np.random.default_rng(7), 60)
    b = build_contributions(streets, np.random.default_rng(7), 60)
    assert [(c.title, c.text, c.location) for c in a] == [(c.title, c.text, c.location) for c in b]
    text = " ".join(c.title + " " + c.text for c in a)
    assert "in der Mühlenweg" not in text and "der Am Kormoranhof" not in text
    assert "im Mühlenweg" in text or "am Mühlenweg" in text or "zum Mühlenweg" in text
