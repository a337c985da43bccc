"""Counting stations and counts (Munich CSV, station GeoJSON) and DB Rad+ segment volumes."""

from __future__ import annotations

import json

import pytest
from pyproj import Transformer
from shapely.geometry import shape

from cut_processes.io.counters import (
    read_munich_counts,
    read_munich_stations,
    read_station_geojson,
)
from cut_processes.io.dbrad import read_dbrad, segment_id
from cut_processes.io.records import UnreadableFileError

STATIONS = (
    "zaehlstelle,zaehlstelle_lang,latitude,longitude,richtung_1,richtung_2,besonderheiten\n"
    "Arnulf,Arnulfstr. 9 - 11,48.14205,11.55534,Ost,West,nur Stadteinwärts\n"
    "Olympia,Rudolf-Harbig-Weg,48.16887,11.55005,Nord,Süd,\n"
    "Kaputt,Irgendwo,abc,11.5,Nord,Süd,\n"
)
COUNTS = (
    "datum,uhrzeit_start,uhrzeit_ende,zaehlstelle,richtung_1,richtung_2,gesamt,min-temp,"
    "max-temp,niederschlag,bewoelkung,sonnenstunden\n"
    "2017.01.01,00:00,23:59,Arnulf,121,14,135,-6.1,2.6,0.0,36,5.9\n"
    "2017.01.01,00:00,23:59,Olympia,20,22,42,-6.1,2.6,0.0,36,5.9\n"
    "2017.01.02,00:00,23:59,Olympia,,,,-6.1,2.6,0.0,36,5.9\n"
    "2017.01.03,00:00,23:59,Olympia,48,99,147,1,2,0,19,13.8\n"
    "2017.01.03,00:00,23:59,Olympia,106,275,381,1,2,0,19,13.8\n"
    "2017.01.04,00:00,23:59,Olympia,1,2,4,1,2,0,19,13.8\n"
    "2017.13.04,00:00,23:59,Olympia,1,2,3,1,2,0,19,13.8\n"
)


@pytest.fixture()
def munich(tmp_path):
    stations = tmp_path / "stations.csv"
    stations.write_text(STATIONS, "utf-8")
    counts = tmp_path / "counts.csv"
    counts.write_text(COUNTS, "utf-8")
    return stations, counts


def test_munich_stations_are_points_in_utm32(munich):
    stations, _ = munich
    result = read_munich_stations([stations])
    assert [f["properties"]["id"] for f in result.features] == ["Arnulf", "Olympia"]
    arnulf = result.features[0]
    expected = Transformer.from_crs(4326, 25832, always_xy=True).transform(11.55534, 48.14205)
    assert arnulf["geometry"]["coordinates"] == pytest.approx(expected)
    assert arnulf["properties"]["direction_1"] == "Ost"
    assert arnulf["properties"]["notes"] == "nur Stadteinwärts"
    assert result.rejected == [("stations.csv line 4", "station Kaputt: not a number: 'abc'")]


def test_munich_counts_per_station_day_and_direction(munich):
    stations, counts = munich
    result = read_munich_counts([counts], stations=stations)
    ids = [f["properties"]["id"] for f in result.features]
    assert ids == [f"{s}:2017-01-01:{d}" for s in ("Arnulf", "Olympia") for d in (1, 2)]
    first = result.features[0]
    assert first["geometry"] is None and result.geometry_type == "Geometry"
    assert first["properties"] == {
        "id": "Arnulf:2017-01-01:1", "station_id": "Arnulf", "date": "2017-01-01", "direction": 1,
        "direction_name": "Ost", "count": 121, "min_temperature_c": -6.1,
        "max_temperature_c": 2.6, "precipitation_mm": 0.0, "cloud_cover_percent": 36.0,
        "sunshine_hours": 5.9,
        "source": "Landeshauptstadt München, Raddauerzählstellen, dl-de/by-2-0",
    }  # fmt: skip
    assert result.features[1]["properties"]["direction_name"] == "West"
    reasons = dict(result.rejected)
    assert reasons["counts.csv line 4"] == "station Olympia on 2017-01-02: no counts"
    assert "appears 2 times with different counts" in reasons["counts.csv line 5"]
    assert "appears 2 times with different counts" in reasons["counts.csv line 6"]
    assert "gesamt 4 is not richtung_1 1 + richtung_2 2" in reasons["counts.csv line 7"]
    assert "not a date" in reasons["counts.csv line 8"]


def test_munich_files_must_have_their_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(UnreadableFileError, match=r"x\.csv: not a Munich daily counts file"):
        read_munich_counts([path])


def test_station_geojson_repairs_or_rejects_malformed_points(tmp_path):
    apart = [[9.93676, 53.550106], [9.936808, 53.550366]]
    same = [[9.931627, 53.628733], [9.93162701, 53.628733]]
    features = [
        {"type": "Feature", "properties": {"name": "Verkehrszählstelle 0295970", "anzahl": 36822},
         "geometry": {"type": "Point", "coordinates": [9.999377, 53.580126]}},
        # two positions 29 m apart: which one is the station is ambiguous
        {"type": "Feature", "properties": {"name": "Verkehrszählstelle 0286941", "anzahl": 5128},
         "geometry": {"type": "Point", "coordinates": apart}},
        # the same position twice (a few mm apart): unambiguous, repaired
        {"type": "Feature", "properties": {"name": "Verkehrszählstelle 0211951", "anzahl": 2979},
         "geometry": {"type": "Point", "coordinates": same}},
        {"type": "Feature", "properties": {"name": "Verkehrszählstelle 1", "anzahl": "viele"},
         "geometry": {"type": "Point", "coordinates": [9.9, 53.5]}},
        {"type": "Feature", "properties": {"name": "Verkehrszählstelle 2", "anzahl": 3},
         "geometry": {"type": "LineString", "coordinates": [[9.9, 53.5], [9.91, 53.5]]}},
    ]  # fmt: skip
    path = tmp_path / "stations.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    result = read_station_geojson([path], source="Hamburg, dl-de/by-2-0")
    assert [f["properties"]["id"] for f in result.features] == ["0295970", "0211951"]
    assert result.features[0]["properties"] == {
        "id": "0295970", "name": "Verkehrszählstelle 0295970", "anzahl": 36822,
        "source": "Hamburg, dl-de/by-2-0",
    }  # fmt: skip
    reasons = dict(result.rejected)
    ambiguous = reasons["stations.geojson feature 1 (Verkehrszählstelle 0286941)"]
    assert "2 coordinate pairs 29.1 m apart" in ambiguous and "ambiguous" in ambiguous
    assert "not a number" in reasons["stations.geojson feature 3 (Verkehrszählstelle 1)"]
    assert (
        "LineString geometry where Point"
        in reasons["stations.geojson feature 4 (Verkehrszählstelle 2)"]
    )
    (repair,) = result.repaired
    assert repair[0] == "stations.geojson feature 2 (Verkehrszählstelle 0211951)"
    assert "replaced by their mean" in repair[1]
    # a wider tolerance repairs the 29 m pair too
    wide = read_station_geojson([path], point_tolerance_m=50)
    assert "0286941" in [f["properties"]["id"] for f in wide.features]


def dbrad_week(start, end, features):
    return {
        "type": "FeatureCollection",
        "name": "letzte_woche",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": [
            {"type": "Feature", "properties": {"gml_id": f"DE.HH.UP_LETZTE_WOCHE_{i}",
             "anzahl": n, "geschwindigkeit": v, "von": start, "bis": end}, "geometry": g}
            for i, (n, v, g) in enumerate(features)
        ],
    }  # fmt: skip


def test_dbrad_segments_keep_their_id_across_weeks(tmp_path):
    line = {"type": "LineString", "coordinates": [[9.97214, 53.54985], [9.97143, 53.55000]]}
    other = {"type": "LineString", "coordinates": [[10.0313, 53.5375], [10.0314, 53.5376]]}
    week1 = tmp_path / "dbrad_week_2023-02-04.geojson"
    week1.write_text(json.dumps(dbrad_week("2023-01-28", "2023-02-03", [
        (15, 19.0, line), (9, 20.1, other), ("x", 20.0, other),
        (3, 18.0, {"type": "Point", "coordinates": [10.0, 53.5]}),
    ])), "utf-8")  # fmt: skip
    week2 = tmp_path / "dbrad_week_2023-03-11.geojson"
    week2.write_text(
        json.dumps(dbrad_week("2023-03-04", "2023-03-10", [(11, 21.1, line)])), "utf-8"
    )
    result = read_dbrad([week1, week2])
    props = [f["properties"] for f in result.features]
    assert len(props) == 3
    assert props[0]["segment_id"] == props[2]["segment_id"] == segment_id(line["coordinates"])
    assert props[0]["segment_id"] != props[1]["segment_id"]
    assert props[0]["id"] == f"{props[0]['segment_id']}:2023-01-28"
    assert props[2] | {"id": None, "segment_id": None} == {
        "id": None, "segment_id": None, "week_start": "2023-03-04", "week_end": "2023-03-10",
        "rides": 11, "speed_kmh": 21.1, "gml_id": "DE.HH.UP_LETZTE_WOCHE_0",
        "source": "DB Rad+ via Behörde für Verkehr und Mobilitätswende Hamburg, dl-de/by-2-0",
    }  # fmt: skip
    geom = shape(result.features[0]["geometry"])
    assert geom.geom_type == "LineString" and 40 < geom.length < 60  # metres in EPSG:25832
    reasons = dict(result.rejected)
    assert "anzahl" in reasons["dbrad_week_2023-02-04.geojson feature 2"]
    assert "Point geometry where LineString" in reasons["dbrad_week_2023-02-04.geojson feature 3"]
