"""CIMT corpora (DIPAS FreiRaum Ottensen, cycling dialogues Bonn/Moers) -> contributions."""

from __future__ import annotations

from collections import Counter

import pytest

from cut_processes.io.cimt import read_cimt

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ottensen(io_shared_data):
    return read_cimt([io_shared_data / "participation" / "dipas_ottensen_thematic.csv"])


@pytest.fixture(scope="module")
def cycling(io_shared_data):
    return read_cimt([io_shared_data / "participation" / "cycling_dialogues_bonn_moers.csv"])


def test_ottensen_483_contributions_with_their_topic_labels(ottensen):
    assert len(ottensen.features) == 483 and ottensen.rejected == []
    props = [f["properties"] for f in ottensen.features]
    topics = Counter(t for p in props for t in p["topics"])
    assert topics["cycling"] == 207
    assert topics["walking"] == 123
    assert topics["stationary traffic (parking)"] == 156
    assert topics["public transport (long-distance)"] == 0
    assert sum(not p["topics"] for p in props) == 85  # contributions without any label
    first = next(p for p in props if p["id"] == "Ott262")
    assert first["title"] == "Alma Wartenberg Platz aufwerten"
    assert first["url"].endswith("/contribution/262")
    assert first["topics"] == [
        "motorized transport", "non-motorized transport", "cycling",
        "public transport (local)", "moving traffic",
    ]  # fmt: skip
    assert all(p["project"] == "FreiRaum Ottensen (DIPAS, Hamburg 2021)" for p in props)


def test_cycling_dialogues_2773_contributions(cycling):
    assert len(cycling.features) == 2773 and cycling.rejected == []
    props = [f["properties"] for f in cycling.features]
    projects = Counter(p["project"] for p in props)
    assert projects == {"Raddialog Bonn 2017": 2314, "Raddialog Moers 2017": 459}
    categories = Counter(p["category"] for p in props)
    assert len(categories) == 8
    assert categories["cycling_traffic_management"] == 1242
    assert categories["lighting"] == 47
    assert sum(len(p["topics"]) for p in props) > 2773  # multi-label level 2
    assert all(p["date_created"].startswith("2017-") for p in props)
    assert min(p["date_created"] for p in props) == "2017-09-13T06:08:40Z"  # +02:00 -> UTC
    assert sum(p["text"] is None for p in props) == 31  # title only
