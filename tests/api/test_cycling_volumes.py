"""cycling-volumes through the HTTP API (Flask test client), on the generated demo district."""

from __future__ import annotations

import json
from pathlib import Path

import fiona
import numpy as np
import pytest
from conftest import finished_job

EXECUTE = "/processes/cycling-volumes/execution"
SHARED = Path(__file__).parents[2].parent / "shared" / "data"
HAMBURG_STATIONS = SHARED / "bike" / "hamburg_counting_stations.geojson"


def execute(client, inputs, **headers):
    return client.post(EXECUTE, json={"inputs": inputs}, headers=headers)


def fc(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def count(station, day, value, **extra):
    return {"type": "Feature", "geometry": None,
            "properties": {"station_id": station, "date": day, "count": value, **extra}}


def series(station="S1", days=120, start="2024-03-01", base=500.0):
    first = np.datetime64(start)
    rng = np.random.default_rng(3)
    out = []
    for k in range(days):
        day = first + np.timedelta64(k, "D")
        weekend = (day.astype("datetime64[D]").view("int64") - 4) % 7 >= 5
        rain = float(rng.gamma(0.6, 4.0)) if rng.random() < 0.4 else 0.0
        value = base * (0.6 if weekend else 1.0) * np.exp(-0.05 * rain) * rng.lognormal(0, 0.05)
        out.append(count(station, str(day), round(value), max_temperature_c=15.0,
                         min_temperature_c=6.0, precipitation_mm=rain, sunshine_hours=5.0,
                         cloud_cover_percent=60))
    return out


@pytest.fixture(scope="module")
def example(client_module):
    desc = client_module.get("/processes/cycling-volumes?f=json").get_json()
    response = execute(client_module, desc["example"]["inputs"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return desc, response.get_json()


@pytest.fixture(scope="module")
def client_module(app):
    return app.test_client()


def test_metadata_example_runs_on_the_demo(example):
    desc, out = example
    assert desc["title"] == "Cycling volumes"
    assert set(out) >= {"stations", "time_series", "segments", "corridors", "summary",
                        "provenance"}
    assert out["summary"]["analyses"] == ["counters", "network", "corridors"]
    stations = {f["properties"]["station_id"]: f for f in out["stations"]["features"]}
    assert len(stations) == 8
    for feature in stations.values():
        props = feature["properties"]
        assert feature["geometry"]["type"] == "Point"
        assert 9 < feature["geometry"]["coordinates"][0] < 11
        assert props["dtv"] > 0 and props["dtv_year"] == 2025
        assert props["segment_id"] and props["segment_distance_m"] < 25
        assert props["trend"] and props["model"]
    # forecasts for the requested day, for every station
    for sid, ts in out["time_series"].items():
        assert ts["forecast"][0]["date"] == "2026-06-01", sid
        assert 0 < ts["forecast"][0]["low"] <= ts["forecast"][0]["expected"]
    segments = out["segments"]["features"]
    assert len(segments) == 392
    assert all(f["properties"]["calibration"] != "none: relative volume only"
               for f in segments)
    corridors = out["corridors"]["features"]
    assert [c["properties"]["rank"] for c in corridors] == list(range(1, 11))
    assert corridors[0]["geometry"]["type"] == "LineString"
    rides = [c["properties"]["ride_km"] for c in corridors]
    assert rides == sorted(rides, reverse=True)
    stability = out["summary"]["corridors"]["stability"]
    assert len(stability["weeks"]) == 3 and stability["mean_segment_spearman"] > 0.5


def planted_runs(demo_dir) -> list[tuple[str, str, np.datetime64, np.datetime64]]:
    """(station, kind, first day, last day) of each run of planted anomaly days."""
    days: dict[tuple[str, str], list[np.datetime64]] = {}
    with fiona.open(demo_dir / "district.gpkg", layer="bike_truth") as src:
        for row in src:
            p = row.properties
            if p["anomaly"]:
                days.setdefault((p["station_id"], p["anomaly"]), []).append(
                    np.datetime64(p["date"]))
    runs = []
    for (sid, kind), dates in sorted(days.items()):
        dates.sort()
        first = prev = dates[0]
        for day in [*dates[1:], None]:
            if day is None or (day - prev).astype(int) > 1:
                runs.append((sid, kind, first, prev))
                first = day
            prev = day
    return runs


def test_planted_anomalies_are_found_and_nothing_else(example, demo_dir):
    _, out = example
    found = {f["properties"]["station_id"]: f["properties"]["anomalies"]
             for f in out["stations"]["features"]}
    runs = planted_runs(demo_dir)
    assert len(runs) == 5
    for sid, kind, first, last in runs:
        if kind == "level_shift":  # truth marks the undercounted days before the change
            change = last + np.timedelta64(1, "D")
            hits = [a for a in found[sid] if a["kind"] == "level_shift"
                    and abs((np.datetime64(a["start"]) - change).astype(int)) <= 14]
        else:  # the found period covers at least 80 % of the planted one
            planted = (last - first).astype(int) + 1
            hits = [a for a in found[sid] if a["kind"] == kind and (
                (min(np.datetime64(a["end"]), last) - max(np.datetime64(a["start"]), first))
                .astype(int) + 1 >= 0.8 * planted)]
        assert hits, (sid, kind, str(first), str(last), found[sid])
    planted_stations = {sid for sid, *_ in runs}
    for sid, anomalies in found.items():
        if sid not in planted_stations:
            assert all(a["days"] <= 3 for a in anomalies), (sid, anomalies)


def test_calibrated_volumes_against_the_hidden_truth(example, demo_dir):
    _, out = example
    truth: dict[str, list[float]] = {}
    with fiona.open(demo_dir / "district.gpkg", layer="bike_segments_truth") as src:
        for row in src:
            truth.setdefault(row.properties["segment_id"], []).append(
                row.properties["daily_cyclists"])
    errors = []
    for feature in out["segments"]["features"]:
        props = feature["properties"]
        errors.append(props["cyclists_estimated"] / np.mean(truth[props["segment_id"]]) - 1)
    # generated data: measured 13.9 % median absolute error (see docs); a broken calibration
    # (wrong period length, rides not per day) is off by a factor
    assert np.median(np.abs(errors)) < 0.25
    loso = out["summary"]["network"]["leave_one_station_out"]["summary"]
    assert loso["n"] == 8 and loso["median_abs_error_pct"] < 25


def test_top_corridor_is_the_official_route_axis(example):
    _, out = example
    first = out["corridors"]["features"][0]["properties"]
    # the generator's heaviest axis (A) is the official "Veloroute 1 (generiert)"
    assert first["share_official"] > 0.9
    assert "Veloroute 1 (generiert)" in first["official_names"]
    off = out["summary"]["corridors"]["heavily_used_not_on_official"]
    assert off and all(row["share_on_official"] < 0.5 for row in off)


def test_async_execution_reports_progress(client):
    response = execute(client, {"counts": fc(*series()), "federal_state": "HH"},
                       Prefer="respond-async")
    status, result = finished_job(client, response)
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    assert result["summary"]["analyses"] == ["counters"]
    assert len(result["time_series"]["S1"]["daily"]["date"]) == 120


def test_dates_out_of_order_and_exact_duplicates_are_repaired(client):
    records = series(days=90)
    shuffled = [*records[::-1], records[10]]
    response = execute(client, {"counts": fc(*shuffled), "federal_state": "HH"})
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    daily = out["time_series"]["S1"]["daily"]["date"]
    assert daily == sorted(daily) and len(daily) == 90
    assert any("duplicate" in r for r in out["summary"]["counters"]["repairs"])


def test_hamburg_station_points_with_two_positions_are_repaired(client):
    if not HAMBURG_STATIONS.is_file():
        pytest.skip("../shared/data is not beside the project")
    document = json.loads(HAMBURG_STATIONS.read_text(encoding="utf-8"))
    names = ("0286941", "0286942", "0211951")
    chosen = [f for f in document["features"] if f["properties"]["name"].endswith(names)]
    assert len(chosen) == 3
    for f in chosen:
        f["properties"]["id"] = f["properties"]["name"].rsplit(" ", 1)[1]
    records = series("0286941", days=60)
    response = execute(client, {"counts": fc(*records), "stations": fc(*chosen),
                                "federal_state": "HH"})
    assert response.status_code == 200, response.get_json()
    report = response.get_json()["summary"]["inputs"]["stations"]
    assert report["repaired"] == 3
    assert all("replaced by their mean" in r for r in report["repairs"])
    # with a tolerance below their spread (18 and 29 m) they are refused, by name
    response = execute(client, {"counts": fc(*records), "stations": fc(*chosen),
                                "federal_state": "HH", "point_tolerance_m": 5})
    assert response.status_code == 400
    assert "0286941" in json.dumps(response.get_json())


LINE = {"type": "LineString", "coordinates": [[9.93, 53.55], [9.931, 53.5505]]}


@pytest.mark.parametrize(
    ("inputs", "named", "words"),
    [
        ({}, "counts", "give counts"),
        ({"analyses": ["corridors"], "counts": fc(count("A", "2024-01-01", 3))}, "segments",
         "required for the corridors"),
        ({"counts": fc(count("A", "2024-01-01", -3))}, "counts", "negative count"),
        ({"counts": fc(count("A", "2024-01-01", 3), count("A", "2024-01-01", 5))}, "counts",
         "2024-01-01"),
        ({"counts": fc(*series(days=40)), "station_ids": ["S9"]}, "station_ids", "S9"),
        ({"segments": fc({"type": "Feature", "id": "g1", "geometry": None,
                          "properties": {"rides": 4}})}, "segments", "'g1' has no geometry"),
        ({"segments": fc({"type": "Feature", "id": "p1", "properties": {"rides": 4},
                          "geometry": {"type": "LineString",
                                       "coordinates": [[562000, 5934000], [562100, 5934000]]}})},
         "segments", "outside longitude/latitude"),
        ({"segments": fc({"type": "Feature", "id": "m1", "properties": {"rides": 4},
                          "geometry": LINE},
                         {"type": "Feature", "id": "m2", "properties": {"rides": 4},
                          "crs": {"type": "name", "properties": {"name": "EPSG:25832"}},
                          "geometry": {"type": "LineString",
                                       "coordinates": [[562000, 5934000], [562100, 5934000]]}})},
         "segments", "mixed CRS"),
        ({"segments": fc({"type": "Feature", "id": "n1", "properties": {"rides": -2},
                          "geometry": LINE})}, "segments", "not a count"),
        ({"counts": {"sensorthings": "https://iot.hamburg.de/v1.1"}}, "counts", "not allowed"),
        ({"counts": "datum;nix\n1;2\n"}, "counts", "missing columns"),
        ({"counts": {"collection": "nope"}}, "counts", "unknown collection"),
        ({"counts": {"collection": "bike-counts", "filter": "station_id = = 'x'"}}, "counts",
         "invalid CQL2 filter"),
        ({"federal_state": "XX", "counts": fc(count("A", "2024-01-01", 3))}, "federal_state",
         "is not one of"),
        ({"counts": fc(*series(days=80)), "fit_until": "2024-02-30"}, "fit_until",
         "is not a date"),
        ({"counts": fc(*series(days=80)), "fit_until": "garbage"}, "fit_until",
         "is not a date"),
        ({"counts": fc(*series(days=80)), "forecast": [{"date": "9999-12-31"}]},
         "forecast/0/date", "between 1990 and 2100"),
        ({"segments": {"collection": "segment-volumes"},
          "official_routes": fc({"type": "Feature", "properties": {"name": "Berlin"},
                                 "geometry": {"type": "LineString",
                                              "coordinates": [[13.4, 52.5], [13.41, 52.5]]}})},
         "official_routes", "within 1 km"),
    ],
)
def test_bad_input_gets_400_naming_the_problem(client, inputs, named, words):
    response = execute(client, inputs)
    assert response.status_code == 400, response.get_json()
    detail = json.dumps(response.get_json(), ensure_ascii=False)
    assert f"'{named}" in detail, detail
    assert words in detail, detail


def test_publish_through_the_api(client):
    segments = fc(
        {"type": "Feature", "id": "a", "geometry": LINE,
         "properties": {"rides": 70, "week_start": "2024-03-04", "week_end": "2024-03-10",
                        "name": "Lindenweg"}},
        {"type": "Feature", "id": "b",
         "geometry": {"type": "LineString", "coordinates": [[9.931, 53.5505], [9.932, 53.551]]},
         "properties": {"rides": 50, "week_start": "2024-03-04", "week_end": "2024-03-10",
                        "name": "Lindenweg"}})
    stations = fc({"type": "Feature", "geometry": {"type": "Point",
                                                   "coordinates": [9.9305, 53.55026]},
                   "properties": {"id": "S1", "name": "Lindenweg", "federal_state": "HH"}})
    response = execute(client, {"counts": fc(*series()), "stations": stations,
                                "segments": segments, "publish": True, "time_series": False})
    assert response.status_code == 200, response.get_data(as_text=True)
    out = response.get_json()
    published = out["summary"]["published"]
    assert set(published) == {"stations", "segments", "corridors"}
    assert published["segments"]["collection"] == "cycling-volumes-segments-results"
    assert published["segments"]["count"] == 2
    job_id = published["segments"]["href"].rsplit("job_id=", 1)[1]
    items = client.get(
        f"/collections/cycling-volumes-segments-results/items?job_id={job_id}&f=json"
    ).get_json()
    assert items["numberMatched"] == 2
    props = items["features"][0]["properties"]
    assert props["calibration"] == "global factor" and props["cyclists_estimated"] > 0
    stations_items = client.get(
        f"/collections/cycling-volumes-stations-results/items?job_id={job_id}&f=json"
    ).get_json()
    assert stations_items["features"][0]["properties"]["dtv"] > 0
    corridor_items = client.get(
        f"/collections/cycling-volumes-corridors-results/items?job_id={job_id}&f=json"
    ).get_json()
    assert corridor_items["features"][0]["properties"]["rank"] == 1


def test_one_station_that_cannot_be_modelled_does_not_stop_the_others(client):
    records = [*series("S1", days=120), *series("S2", days=20)]
    response = execute(client, {"counts": fc(*records), "federal_state": "HH",
                                "time_series": False})
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    skipped = out["summary"]["counters"]["stations_skipped"]
    assert [s["station_id"] for s in skipped] == ["S2"] and skipped[0]["reason"]
    assert set(out["time_series"]) == {"S1"}


def test_counts_that_miss_the_segments_period_exclude_their_station(client):
    stations = fc({"type": "Feature", "geometry": {"type": "Point",
                                                   "coordinates": [9.9305, 53.55026]},
                   "properties": {"id": "S1", "federal_state": "HH"}})
    segments = fc({"type": "Feature", "id": "a", "geometry": LINE,
                   "properties": {"rides": 70, "week_start": "2025-03-03",
                                  "week_end": "2025-03-09"}})
    response = execute(client, {"counts": fc(*series()), "stations": stations,
                                "segments": segments, "time_series": False})
    assert response.status_code == 200, response.get_json()
    network = response.get_json()["summary"]["network"]
    assert network["stations_used"] == 0
    excluded = network["stations_excluded"]
    assert excluded[0]["station_id"] == "S1" and "cover 0%" in excluded[0]["reason"]
    props = response.get_json()["segments"]["features"][0]["properties"]
    assert props["calibration"] == "none: relative volume only"
    assert props["cyclists_estimated"] is None


def test_incomplete_days_are_not_taken_as_counted():
    from cut_processes.analysis.cycling_network import counted_per_day

    daily = {"date": ["2024-03-04", "2024-03-05"], "count": [100.0, 40.0],
             "expected": [100.0, 90.0], "flag": [None, None], "complete": [True, False]}
    days = np.array(["2024-03-04", "2024-03-05"], dtype="datetime64[D]")
    counted, coverage = counted_per_day(daily, days)
    assert coverage == 1.0 and counted == 95.0  # the half-counted day takes the model's 90


def test_counts_from_a_sensorthings_service(monkeypatch):
    """Daily datastreams of a FROST-like service (replayed in memory) through the process:
    the Things' locations become the stations."""
    from urllib.parse import unquote

    import cut_processes.io.sensorthings as sta
    from cut_processes.processes.cycling_volumes import CyclingVolumesProcessor

    root = "https://iot.example.org/v1.1"
    days = [str(np.datetime64("2024-01-01") + np.timedelta64(k, "D")) for k in range(150)]
    rng = np.random.default_rng(5)
    level = {"7": 800.0, "8": 300.0}
    things = {"value": [
        {"@iot.id": int(tid), "name": f"Zählstelle {tid}",
         "Locations": [{"location": {"type": "Point", "coordinates": [9.93 + int(tid) / 1000,
                                                                    53.55]}}],
         "Datastreams": [{"@iot.id": int(tid) * 10, "unitOfMeasurement": {"name": "Anzahl"},
                          "properties": {"layerName": "Anzahl_Fahrraeder_Zaehlfeld_1-Tag"}}]}
        for tid in level]}
    requests = []

    def replay(url: str, timeout: float) -> dict:
        requests.append(unquote(url))
        if "/Things" in url:
            return things
        tid = unquote(url).split("Datastreams(")[1].split(")")[0][:-1]
        values = []
        for k, day in enumerate(days):
            weekend = k % 7 in (5, 6)
            count = rng.poisson(level[tid] * (0.6 if weekend else 1.0))
            values.append({"@iot.id": k, "phenomenonTime": f"{day}T00:00:00+01:00/"
                           f"{np.datetime64(day) + np.timedelta64(1, 'D')}T00:00:00+01:00",
                           "result": int(count)})
        return {"value": values}

    monkeypatch.setattr(sta, "urllib_get", replay)
    processor = CyclingVolumesProcessor({"name": "cycling-volumes", "allowed_hrefs": [root]})
    _, out = processor.execute({
        "counts": {"sensorthings": root, "layer_name": "Anzahl_Fahrraeder_Zaehlfeld_1-Tag"},
        "federal_state": "HH", "time_series": False})
    assert any("/Things" in r for r in requests) and any("Observations" in r for r in requests)
    stations = {f["properties"]["station_id"]: f for f in out["stations"]["features"]}
    assert set(stations) == {"7", "8"}
    assert stations["7"]["geometry"]["type"] == "Point"
    # the DTV of each station reflects its level (weekday 800 / 300, weekends 60 %)
    assert 600 < stations["7"]["properties"]["dtv"] < 800
    assert 220 < stations["8"]["properties"]["dtv"] < 300
    assert out["summary"]["inputs"]["counts"]["records"] == 300
