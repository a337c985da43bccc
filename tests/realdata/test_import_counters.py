"""Counting stations and counts (Munich, Hamburg) and DB Rad+ weekly segment volumes."""

from __future__ import annotations

from collections import Counter

import pytest
from shapely.geometry import shape

from cut_processes.io.counters import (
    read_munich_counts,
    read_munich_stations,
    read_station_geojson,
)
from cut_processes.io.dbrad import read_dbrad

pytestmark = pytest.mark.realdata

WEEKS = {  # features per DB Rad+ week file
    "2023-01-28": 7088, "2023-03-04": 6703, "2023-04-08": 10233,
    "2023-06-03": 4266, "2023-09-25": 11346, "2023-11-25": 9293,
}  # fmt: skip


def test_munich_six_stations_in_utm32(io_shared_data):
    result = read_munich_stations([io_shared_data / "bike" / "munich_counting_stations.csv"])
    assert result.rejected == []
    ids = {f["properties"]["id"] for f in result.features}
    assert ids == {"Arnulf", "Kreuther", "Olympia", "Hirsch", "Margareten", "Erhardt"}
    for feat in result.features:
        x, y = feat["geometry"]["coordinates"]
        assert 680000 < x < 700000 and 5325000 < y < 5345000  # Munich in EPSG:25832


def test_munich_daily_counts_2017_to_2023(io_shared_data):
    bike = io_shared_data / "bike"
    result = read_munich_counts(
        [bike / "munich_counters_daily_2017_2023.csv"],
        stations=bike / "munich_counting_stations.csv",
    )
    props = [f["properties"] for f in result.features]
    dates = [p["date"] for p in props]
    assert (min(dates), max(dates)) == ("2017-01-01", "2023-12-31")
    assert len({p["station_id"] for p in props}) == 6
    assert len(props) == 2 * (15152 - 12)
    # 10 days without counts at Kreuther (June 2023), one day there listed twice
    reasons = Counter(reason.split(": ", 1)[-1].split(" (")[0] for _, reason in result.rejected)
    assert len(result.rejected) == 12
    assert reasons["no counts"] == 10
    assert sum("appears 2 times with different counts" in r for _, r in result.rejected) == 2
    arnulf = next(p for p in props if p["id"] == "Arnulf:2017-01-01:1")
    assert (arnulf["count"], arnulf["direction_name"], arnulf["max_temperature_c"]) == (
        121, "Ost", 2.6,
    )  # fmt: skip


def test_hamburg_stations_reject_the_three_malformed_points(io_shared_data):
    result = read_station_geojson(
        [io_shared_data / "bike" / "hamburg_counting_stations.geojson"],
        source="Hamburg open data via ADFC Hamburg, dl-de/by-2-0",
    )
    assert len(result.features) == 236 and result.repaired == []
    rejected = dict(result.rejected)
    assert len(rejected) == 3
    names = sorted(ref.split("(")[1].rstrip(")") for ref in rejected)
    assert names == [
        "Verkehrszählstelle 0211951", "Verkehrszählstelle 0286941", "Verkehrszählstelle 0286942",
    ]  # fmt: skip
    assert all("coordinate pairs" in r and "ambiguous" in r for r in rejected.values())
    for feat in result.features:
        x, y = shape(feat["geometry"]).coords[0]
        assert 540000 < x < 600000 and 5910000 < y < 5960000  # Hamburg


def test_dbrad_six_weeks_of_segment_volumes(io_shared_data):
    paths = sorted((io_shared_data / "bike" / "hamburg_dbrad").glob("dbrad_week_*.geojson"))
    assert len(paths) == 6
    result = read_dbrad(paths)
    assert result.rejected == []
    per_week = Counter(f["properties"]["week_start"] for f in result.features)
    assert dict(per_week) == WEEKS
    segments = {f["properties"]["segment_id"] for f in result.features}
    # the same street segment keeps its id across weeks: far fewer ids than records
    assert len(segments) == 19840 < len(result.features) == sum(WEEKS.values())
    rides = [f["properties"]["rides"] for f in result.features]
    assert min(rides) >= 8  # the platform publishes segments with at least 8 rides
