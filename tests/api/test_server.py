"""The WSGI app through Flask's test client: health, limits, landing page, echo."""

from __future__ import annotations

import json
import time

import pytest

from cut_processes.server import create_app
from cut_processes.settings import Settings


def test_health_reports_every_store_and_the_job_engine(client):
    response = client.get("/health")
    assert response.status_code == 200
    report = response.get_json()
    assert report["status"] == "ok"
    names = {check["name"] for check in report["checks"]}
    assert {"collection:buildings", "collection:streets", "jobs"} <= names
    assert all(check["status"] == "ok" for check in report["checks"])


def test_health_says_503_and_names_a_missing_store(app_env, tmp_path):
    env = {**app_env.environ(), "CUT_DATA_DIR": str(tmp_path / "nothing-here")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        broken = create_app(app_env.config, app_env.openapi)
    response = broken.test_client().get("/health")
    assert response.status_code == 503
    report = response.get_json()
    failed = {c["name"]: c for c in report["checks"] if c["status"] != "ok"}
    assert "collection:buildings" in failed
    assert "nothing-here" in failed["collection:buildings"]["detail"]


def test_body_above_the_limit_gets_413_with_an_ogc_exception(app_env):
    settings = Settings(app_env.var_dir, app_env.data_dir, max_body_bytes=1000)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in app_env.environ().items():
            mp.setenv(key, value)
        small = create_app(app_env.config, app_env.openapi, settings=settings)
    body = json.dumps({"inputs": {"message": "x" * 2000}})
    response = small.test_client().post(
        "/processes/echo/execution", data=body, content_type="application/json"
    )
    assert response.status_code == 413
    problem = response.get_json()
    assert problem["status"] == 413
    assert problem["title"] == "Payload Too Large"
    assert "1000 bytes" in problem["detail"]


def test_body_under_the_limit_passes(client):
    body = {"inputs": {"message": "x" * 2000}}
    response = client.post("/processes/echo/execution", json=body)
    assert response.status_code == 200
    assert response.get_json()["message"] == "x" * 2000


def test_access_log_has_no_request_bodies(client, caplog):
    import logging

    logger = logging.getLogger("cut_processes.access")
    logger.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="cut_processes.access"):
            client.post("/processes/echo/execution", json={"inputs": {"message": "geheim-123"}})
    finally:
        logger.propagate = False
    lines = [r.getMessage() for r in caplog.records if r.name == "cut_processes.access"]
    assert any("POST /processes/echo/execution 200" in line for line in lines)
    assert not any("geheim-123" in line for line in lines)


def test_landing_page_links_conformance_and_collections(client):
    body = client.get("/?f=json").get_json()
    rels = {link["rel"] for link in body["links"]}
    assert "conformance" in rels or "http://www.opengis.net/def/rel/ogc/1.0/conformance" in rels
    assert "data" in rels or "http://www.opengis.net/def/rel/ogc/1.0/data" in rels
    assert "http://www.opengis.net/def/rel/ogc/1.0/processes" in rels
    assert body["title"] == "Connected Urban Twins processes"


def test_landing_page_speaks_german(client):
    body = client.get("/?f=json&lang=de").get_json()
    assert body["title"] == "Connected Urban Twins Prozesse"


def test_collections_are_described_in_both_languages(client):
    en = client.get("/collections/buildings?f=json").get_json()
    de = client.get("/collections/buildings?f=json&lang=de").get_json()
    assert "generated" in en["title"]
    assert "generiert" in de["title"]
    crs = en["crs"]
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in crs
    assert "http://www.opengis.net/def/crs/EPSG/0/25832" in crs
    assert "http://www.opengis.net/def/crs/EPSG/0/4326" in crs
    assert en["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/25832"
    assert en["extent"]["spatial"]["bbox"][0][0] == pytest.approx(9.9205)


def test_queryables_have_types(client):
    body = client.get("/collections/buildings/queryables?f=json").get_json()
    props = body["properties"]
    assert props["storeys"]["type"] == "integer"
    assert props["measured_height"]["type"] == "number"
    assert props["function"]["type"] == "string"


def test_process_metadata_is_complete(client):
    desc = client.get("/processes/echo?f=json").get_json()
    assert desc["id"] == "echo"
    assert set(desc["jobControlOptions"]) >= {"sync-execute", "async-execute"}
    assert desc["inputs"]["message"]["schema"]["type"] == "string"
    assert desc["example"]["inputs"]["message"]
    german = client.get("/processes/echo?f=json&lang=de").get_json()
    assert "Nachricht" in german["description"]


def test_echo_sync_returns_the_message_and_provenance(client):
    response = client.post(
        "/processes/echo/execution", json={"inputs": {"message": "Moin", "pause": 0.2}}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "Moin"
    prov = body["provenance"]
    assert prov["process"] == "echo"
    assert prov["parameters"] == {"message": "Moin", "pause": 0.2}
    assert prov["input_digest"].startswith("sha256:")
    assert prov["started"] <= prov["finished"]


def test_echo_accepts_a_qualified_value(client):
    response = client.post(
        "/processes/echo/execution", json={"inputs": {"message": {"value": "Moin"}}}
    )
    assert response.status_code == 200
    assert response.get_json()["message"] == "Moin"


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({}, "message"),
        ({"message": 42}, "message"),
        ({"message": "x", "pause": -1}, "pause"),
        ({"message": "x", "pause": "long"}, "pause"),
        ({"message": "x", "colour": "red"}, "colour"),
    ],
)
def test_echo_bad_input_gets_400_naming_the_input(client, inputs, named):
    response = client.post("/processes/echo/execution", json={"inputs": inputs})
    assert response.status_code == 400
    assert f"'{named}'" in response.get_json()["description"]


def test_echo_async_returns_201_location_and_finishes(client):
    response = client.post(
        "/processes/echo/execution",
        json={"inputs": {"message": "async Moin", "pause": 0.3}},
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 201
    location = response.headers["Location"]
    assert "/jobs/" in location
    job_path = "/jobs/" + location.rsplit("/jobs/", 1)[1]
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = client.get(f"{job_path}?f=json").get_json()
        if status["status"] in ("successful", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "successful", status
    results = client.get(f"{job_path}/results?f=json")
    assert results.status_code == 200
    assert results.get_json()["message"] == "async Moin"


@pytest.mark.parametrize(
    "path",
    ["/", "/collections", "/collections/buildings", "/collections/buildings/items",
     "/collections/streets/items", "/processes", "/processes/echo", "/conformance"],
)
def test_html_pages_answer(client, path):
    response = client.get(f"{path}?f=html")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
