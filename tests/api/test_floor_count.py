"""floor-count through the HTTP API (Flask test client) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import finished_job

from cut_processes.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXECUTE = "/processes/floor-count/execution"
BBOX = [9.925, 53.545, 9.93, 53.548]


def building(fid, coords, **props):
    return {"type": "Feature", "id": fid, "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [coords]}}


# A 20 m x 12 m footprint in Hamburg-Altona (CRS84), inside the demo rasters.
SQUARE = [[9.9300, 53.5500], [9.9303, 53.5500], [9.9303, 53.55011], [9.9300, 53.55011],
          [9.9300, 53.5500]]
FAR_AWAY = [[11.5, 48.1], [11.5003, 48.1], [11.5003, 48.10011], [11.5, 48.10011], [11.5, 48.1]]


def execute(client, inputs, **headers):
    return client.post(EXECUTE, json={"inputs": inputs}, headers=headers)


def test_metadata_links_the_model_cards(client):
    desc = client.get("/processes/floor-count?f=json").get_json()
    hrefs = [link["href"] for link in desc["links"]]
    assert any(h.endswith("/models/floor-count-height") for h in hrefs)
    assert "Stockwerk" in client.get("/processes/floor-count?f=json&lang=de").get_json()["title"]


def test_metadata_example_runs_on_the_demo(client):
    example = client.get("/processes/floor-count?f=json").get_json()["example"]
    response = client.post(EXECUTE, json=example)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    features = body["buildings"]["features"]
    assert len(features) == body["summary"]["buildings"] > 10
    for f in features:
        p = f["properties"]
        assert p["method"] in ("height", "fusion", "facade")
        assert 1 <= p["storeys_estimated"] <= 20
        low, high = p["storeys_range"]
        assert low <= p["storeys_estimated"] <= high
        assert 0 < p["confidence"] <= 1
        assert p["model"].startswith("floor-count-")
        assert p["explanation"] and isinstance(p["needs_review"], bool)
        if p["storeys"] is not None:
            assert p["storeys_check"] in ("agree", "disagree")
    summary = body["summary"]
    assert summary["agreement_rate"] >= 0.8
    assert summary["gross_floor_area_m2"] > 0
    prov = body["provenance"]
    assert {m["id"] for m in prov["models"]} >= {"floor-count-height"}
    assert all(len(m["sha256"]) == 64 for m in prov["models"])


def test_inline_buildings_with_attribute_heights(client):
    fc = {"type": "FeatureCollection", "features": [
        building("low", SQUARE, measured_height=6.2, eaves_height=6.2, roof_type="1000",
                 function="31001_1000", year_built=1995),
        building("high", SQUARE, measured_height=19.5, eaves_height=16.2, roof_type="3100",
                 function="31001_1000", year_built=1905, storeys=5),
    ]}
    response = execute(client, {"buildings": fc, "method": "height"})
    assert response.status_code == 200, response.get_json()
    feats = {f["id"]: f["properties"] for f in response.get_json()["buildings"]["features"]}
    assert feats["low"]["storeys_estimated"] == 2
    assert feats["high"]["storeys"] == 5  # a known value is kept
    assert feats["high"]["storeys_estimated"] in (4, 5, 6)
    # output geometry back in CRS84
    ring = response.get_json()["buildings"]["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == pytest.approx(SQUARE[0], abs=1e-7)


def test_building_without_any_evidence_is_not_guessed(client):
    fc = {"type": "FeatureCollection", "features": [building("bare", SQUARE, roof_type="1000")]}
    body = execute(client, {"buildings": fc}).get_json()
    props = body["buildings"]["features"][0]["properties"]
    assert props["method"] == "none"
    assert props["storeys_estimated"] is None
    assert props["needs_review"] is True


def test_async_execution_reports_progress(client):
    response = execute(client, {"buildings": {"collection": "buildings", "bbox": BBOX},
                                "height_raster": "demo"}, Prefer="respond-async")
    status, result = finished_job(client, response)
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    assert result["summary"]["buildings"] > 10


@pytest.mark.parametrize(
    ("inputs", "named", "words"),
    [
        ({"buildings": {"type": "FeatureCollection", "features": []}}, "buildings", "no features"),
        ({"buildings": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "x", "properties": {}, "geometry": None}]}},
         "buildings", "has no geometry"),
        ({"buildings": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "pt", "properties": {},
             "geometry": {"type": "Point", "coordinates": [9.93, 53.55]}}]}},
         "buildings", "is a Point"),
        ({"buildings": {"type": "FeatureCollection", "features": [
            building("neg", SQUARE, measured_height=-4)]}}, "buildings", "negative"),
        ({"buildings": {"type": "FeatureCollection", "features": [building("far", FAR_AWAY)]},
          "height_raster": "demo"}, "height_raster", "does not overlap"),
        ({"buildings": {"type": "FeatureCollection", "features": [building("a", SQUARE)]},
          "height_raster": "nowhere"}, "height_raster", "unknown raster id"),
        ({"buildings": {"type": "FeatureCollection", "features": [
            building("img", SQUARE, facade_image="no_such_image")]}, "method": "facade"},
         "buildings", "unknown facade image"),
        ({"buildings": {"collection": "nope"}}, "buildings", "unknown collection"),
        ({"buildings": {"href": "https://example.org/b.geojson"}}, "buildings", "not allowed"),
        ({"buildings": {"href": "/etc/passwd"}}, "buildings", "only accepted by `cut-twin run`"),
        ({"buildings": {"type": "FeatureCollection", "features": [building("a", SQUARE)]},
          "method": "magic"}, "method", "is not one of"),
    ],
)
def test_bad_input_gets_400_naming_the_problem(client, inputs, named, words):
    response = execute(client, inputs)
    assert response.status_code == 400, response.get_json()
    detail = json.dumps(response.get_json())
    assert f"'{named}" in detail
    assert words in detail


def test_unreadable_facade_image_is_named(client, demo_dir):
    broken = demo_dir / "facades" / "broken_image.png"
    broken.write_bytes(b"not a png at all")
    fc = {"type": "FeatureCollection", "features": [
        building("b1", SQUARE, facade_image="broken_image")]}
    try:
        response = execute(client, {"buildings": fc, "method": "facade"})
    finally:
        broken.unlink()  # the demo folder is shared by the whole session
    assert response.status_code == 400
    assert "unreadable facade image" in json.dumps(response.get_json())


def test_cli_reads_a_local_file(tmp_path, demo_dir, monkeypatch):
    monkeypatch.setenv("CUT_DATA_DIR", str(demo_dir))
    fc = {"type": "FeatureCollection", "features": [
        building("low", SQUARE, measured_height=9.4, eaves_height=9.4, roof_type="1000",
                 function="31001_1000", year_built=1970)]}
    (tmp_path / "b.geojson").write_text(json.dumps(fc))
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"inputs": {"buildings": {"href": str(tmp_path / "b.geojson")},
                                              "height_raster": "demo"}}))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["run", "floor-count", "--inputs", str(request),
                                       "--output", str(out),
                                       "--config", str(ROOT / "pygeoapi-config.yml")])
    assert result.exit_code == 0, result.output
    props = json.loads(out.read_text())["buildings"]["features"][0]["properties"]
    assert props["storeys_estimated"] == 3
    assert props["method"] == "height"


def test_model_cards_are_served(client):
    listing = client.get("/models").get_json()
    ids = {m["id"] for m in listing["models"]}
    assert {"floor-count-height", "floor-count-facade"} <= ids
    card = client.get("/models/floor-count-height").get_json()
    assert card["id"] == "floor-count-height"
    assert len(card["sha256"]) == 64
    assert card["metrics"]["attributes and raster"]["exact"] >= 0.9
    assert "generated" in card["training_data"]["what"]
    assert 0 < card["review_threshold"] < 1


def test_unknown_model_card_is_404(client):
    response = client.get("/models/no-such-model")
    assert response.status_code == 404
    assert "no-such-model" in response.get_json()["detail"]
