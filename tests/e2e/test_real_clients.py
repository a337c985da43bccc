"""Real clients against a live gunicorn server: OWSLib, GDAL's ogrinfo, plain requests."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
import requests
from owslib.ogcapi.features import Features
from owslib.ogcapi.processes import Processes

pytestmark = pytest.mark.e2e


def _demo_counts(demo_dir) -> dict:
    return json.loads((demo_dir / "demo.json").read_text())["counts"]


# --- OWSLib ------------------------------------------------------------------------------


def test_owslib_lists_collections(live_server):
    api = Features(live_server.url)
    ids = {c["id"] for c in api.collections()["collections"]}
    assert {"buildings", "streets"} <= ids


def test_owslib_pages_through_buildings(live_server, demo_dir):
    api = Features(live_server.url)
    total = _demo_counts(demo_dir)["buildings"]
    first = api.collection_items("buildings", limit=500)
    assert first["numberMatched"] == total
    assert first["numberReturned"] == 500
    seen = {f["id"] for f in first["features"]}
    offset = 500
    while offset < total:
        page = api.collection_items("buildings", limit=500, offset=offset)
        seen |= {f["id"] for f in page["features"]}
        offset += 500
    assert len(seen) == total


def test_owslib_reads_items_in_a_bbox(live_server):
    api = Features(live_server.url)
    bbox = [9.925, 53.545, 9.935, 53.550]
    page = api.collection_items("buildings", bbox=bbox, limit=10000)
    assert 0 < page["numberReturned"] < page.get("numberMatched", 10**9) + 1
    everything = api.collection_items("buildings", limit=1)["numberMatched"]
    assert page["numberReturned"] < everything
    for feature in page["features"]:
        xs = [pt[0] for ring in feature["geometry"]["coordinates"] for pt in ring]
        ys = [pt[1] for ring in feature["geometry"]["coordinates"] for pt in ring]
        # envelope intersects the bbox (CRS84 longitude/latitude)
        assert min(xs) <= bbox[2] and max(xs) >= bbox[0]
        assert min(ys) <= bbox[3] and max(ys) >= bbox[1]


def test_owslib_lists_and_executes_echo(live_server):
    api = Processes(live_server.url)
    ids = {p["id"] for p in api.processes()}
    assert "echo" in ids
    assert api.process("echo")["inputs"]["message"]["schema"]["type"] == "string"
    result = api.execute("echo", {"message": "Moin from OWSLib"}, response="raw")
    assert result["message"] == "Moin from OWSLib"


# --- GDAL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ogrinfo() -> str:
    path = shutil.which("ogrinfo")
    if path is None:
        pytest.fail("ogrinfo not installed: `make test` installs Debian's gdal-bin")
    return path


def test_ogrinfo_lists_the_layers(live_server, ogrinfo):
    out = subprocess.run(
        [ogrinfo, "-ro", "-q", f"OAPIF:{live_server.url}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "buildings" in out
    assert "streets" in out


def test_ogrinfo_reads_buildings_with_count_and_fields(live_server, demo_dir, ogrinfo):
    out = subprocess.run(
        [ogrinfo, "-ro", "-so", f"OAPIF:{live_server.url}", "buildings"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    total = _demo_counts(demo_dir)["buildings"]
    assert f"Feature Count: {total}" in out
    for field in ("function", "function_name", "roof_type", "measured_height", "eaves_height",
                  "storeys", "year_built", "facade_image", "source"):
        assert f"{field}:" in out, f"field {field} missing in ogrinfo output:\n{out}"
    assert "storeys: Integer" in out
    assert "measured_height: Real" in out


def test_ogrinfo_reads_every_feature(live_server, demo_dir, ogrinfo):
    out = subprocess.run(
        [ogrinfo, "-ro", "-al", "-q", "-geom=NO", f"OAPIF:{live_server.url}", "streets"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert out.count("OGRFeature(streets)") == _demo_counts(demo_dir)["streets"]


# --- requests ----------------------------------------------------------------------------


def test_landing_page_links(live_server):
    body = requests.get(f"{live_server.url}/?f=json", timeout=10).json()
    hrefs = {link["rel"]: link["href"] for link in body["links"]}
    assert hrefs["self"].startswith(live_server.url)
    for rel in ("service-desc", "conformance", "data",
                "http://www.opengis.net/def/rel/ogc/1.0/processes"):
        assert rel in hrefs, f"landing page lacks rel={rel}"
        assert requests.get(hrefs[rel], timeout=30).status_code == 200


def test_conformance_declares_features_and_processes(live_server):
    classes = requests.get(f"{live_server.url}/conformance?f=json", timeout=10).json()[
        "conformsTo"
    ]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in classes


@pytest.mark.parametrize(
    "path",
    ["/", "/collections", "/collections/buildings", "/collections/buildings/items?limit=5",
     "/collections/streets/items?limit=5", "/processes", "/processes/echo", "/conformance",
     "/jobs"],
)
def test_html_pages(live_server, path):
    sep = "&" if "?" in path else "?"
    response = requests.get(f"{live_server.url}{path}{sep}f=html", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")


def test_sync_execution_returns_200(live_server):
    response = requests.post(
        f"{live_server.url}/processes/echo/execution",
        json={"inputs": {"message": "sync"}}, timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["message"] == "sync"


def test_async_execution_returns_201_and_finishes_with_json_results(live_server):
    response = requests.post(
        f"{live_server.url}/processes/echo/execution",
        json={"inputs": {"message": "async", "pause": 0.5}},
        headers={"Prefer": "respond-async"}, timeout=30,
    )
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.startswith(f"{live_server.url}/jobs/")
    deadline = time.monotonic() + 60
    status = {}
    while time.monotonic() < deadline:
        status = requests.get(location, params={"f": "json"}, timeout=10).json()
        if status["status"] in ("successful", "failed", "dismissed"):
            break
        time.sleep(0.2)
    assert status["status"] == "successful", status
    results = requests.get(f"{location}/results", params={"f": "json"}, timeout=10)
    assert results.status_code == 200
    assert results.headers["Content-Type"].startswith("application/json")
    assert results.json()["message"] == "async"


def test_health(live_server):
    response = requests.get(f"{live_server.url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
