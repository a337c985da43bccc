"""The Features conformance matrix: the same HTTP requests against the GeoPackage and the PostGIS
store, with the same expected answers (Flask test client, temporary configs and stores).

Each store holds the demo district's buildings and streets (copied by ``load_demo_into``), the
hand-made ``places`` of tests/conftest.py (read-only) and a writable ``notes`` collection.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import pyproj
import pytest
import yaml
from feature_store_data import (
    CONFIG,
    CRS84_URI,
    EPSG_25832_URI,
    STORE_PLACES_FIELDS,
    STORE_X0,
    STORE_Y0,
    store_places,
    store_provider_def,
)

from cut_processes.io.store import load_demo_into, open_store

STORES = ["geopackage", "postgis"]
NOTES_FIELDS = {"text": "string", "votes": "integer", "created": "datetime", "public": "boolean"}
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
FEATURES_3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"


def collection(title: str, provider: dict) -> dict:
    return {
        "type": "collection",
        "title": title,
        "description": title,
        "keywords": [title],
        "extents": {"spatial": {"bbox": [9.9, 53.5, 10.0, 53.6], "crs": CRS84_URI}},
        "providers": [provider],
    }


def write_config(folder: Path, location: str) -> Path:
    project = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    resources = {
        "buildings": collection("Buildings", store_provider_def(location, "buildings")),
        "streets": collection("Streets", store_provider_def(location, "streets")),
        "places": collection(
            "Places", store_provider_def(location, "places", time_field="surveyed")
        ),
        "notes": collection(
            "Notes", store_provider_def(location, "notes", editable=True, required=["text"])
        ),
    }
    config = {
        "server": {**project["server"], "url": "http://localhost"},
        "logging": {"level": "ERROR"},
        "metadata": project["metadata"],
        "resources": resources,
    }
    config["server"].pop("manager", None)
    path = folder / "pygeoapi-config.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


@pytest.fixture(scope="module")
def apps(tmp_path_factory, demo_dir, request):
    """{store: Flask app}: a GeoPackage store and a PostGIS store with the same collections."""
    from cut_processes.cli import write_openapi
    from cut_processes.server import create_app

    built = {}
    for store in STORES:
        folder = tmp_path_factory.mktemp(f"features-{store}")
        if store == "geopackage":
            location = str(folder / "store.gpkg")
        else:
            location = request.getfixturevalue("postgis_url")
        load_demo_into(location, demo_dir)
        target = open_store(location)
        target.replace_collection(
            "places", store_places(), fields=STORE_PLACES_FIELDS, geometry_type="Geometry"
        )
        target.replace_collection("notes", [], fields=NOTES_FIELDS, geometry_type="Point")
        config = write_config(folder, location)
        write_openapi(config, folder / "openapi.yml")
        saved = dict(os.environ)
        try:
            application = create_app(config, folder / "openapi.yml")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        application.config["TESTING"] = True
        built[store] = application
    return built


@pytest.fixture(params=STORES)
def client(apps, request):
    return apps[request.param].test_client()


def get(client, path: str, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode(params)
    response = client.get(f"{path}?{query}" if query else path)
    return response.status_code, response.get_json()


def ids(body: dict) -> list:
    return [f["id"] for f in body["features"]]


# --- reading --------------------------------------------------------------------------------

PLACES = "/collections/places/items"


@pytest.mark.parametrize(
    ("params", "expected", "matched"),
    [
        ({"filter": "storeys >= 4", "sortby": "-height"}, ["p12", "p02", "p07"], 3),
        ({"filter": "name LIKE 'Wohn%' OR CASEI(name) = 'garage'"}, ["p01", "p03", "p04", "p11"],
         4),
        ({"filter": "storeys IN (1, 2) AND NOT flat = TRUE", "filter-lang": "cql2-text"},
         ["p05", "p06", "p09"], 3),
        ({"filter": json.dumps({"op": "between", "args": [{"property": "height"}, 3, 8]}),
          "filter-lang": "cql2-json"}, ["p04", "p06", "p08", "p09", "p10"], 5),
        ({"filter": f"S_DWITHIN(geometry, POINT({STORE_X0} {STORE_Y0}), 10)",
          "filter-crs": EPSG_25832_URI}, ["p01", "p06", "p08", "p09", "p10", "p12"], 6),
        ({"filter": f"S_WITHIN(geometry, POLYGON(({STORE_X0} {STORE_Y0}, {STORE_X0 + 10} "
          f"{STORE_Y0}, {STORE_X0 + 10} {STORE_Y0 + 10}, {STORE_X0} {STORE_Y0 + 10}, {STORE_X0} "
          f"{STORE_Y0})))", "filter-crs": EPSG_25832_URI}, ["p01", "p06", "p09"], 3),
        ({"filter": "T_DURING(surveyed, INTERVAL('2024-03-02T00:00:00Z', '2024-03-03T12:00:00Z'))"},
         ["p02", "p04", "p11"], 3),
        ({"datetime": "2024-03-02T00:00:00Z/2024-03-03T23:59:59Z"}, ["p02", "p04", "p05", "p11"],
         4),
        ({"name": "Garage"}, ["p04", "p11"], 2),
        ({"storeys": "2", "filter": "height > 6.5"}, ["p09", "p10"], 2),
        ({"bbox": f"{STORE_X0 - 1},{STORE_Y0 - 1},{STORE_X0 + 11},{STORE_Y0 + 11}",
          "bbox-crs": EPSG_25832_URI, "filter": "storeys >= 2"},
         ["p01", "p06", "p09", "p10", "p12"], 5),
        ({"sortby": "name", "limit": "3"}, ["p07", "p02", "p10"], 12),
        ({"sortby": "-storeys,name", "limit": "4", "offset": "8"}, ["p11", "p05", "p03", "p08"],
         12),  # ... 1: Garage p04, Garage p11 (ties by key), Schuppen; nulls last
        ({"limit": "5", "offset": "10"}, ["p11", "p12"], 12),
    ],
)  # fmt: skip
def test_places_answers(client, params, expected, matched):
    status, body = get(client, PLACES, **params)
    assert status == 200, body
    assert ids(body) == expected
    assert body["numberMatched"] == matched


def test_filter_crs_crs84_bbox_and_epsg4326_point(client):
    to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    west, south = to_crs84.transform(STORE_X0 + 1, STORE_Y0 + 1)
    east, north = to_crs84.transform(STORE_X0 + 9, STORE_Y0 + 9)
    cql = f"S_INTERSECTS(geometry, BBOX({west},{south},{east},{north}))"
    status, body = get(client, PLACES, filter=cql)
    assert status == 200 and ids(body) == ["p01", "p06", "p08", "p09", "p12"]
    lat, lon = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4326").transform(
        STORE_X0 + 45, STORE_Y0 + 5
    )
    status, body = get(client, PLACES, filter=f"S_INTERSECTS(geometry, POINT({lat} {lon}))",
                       **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})  # fmt: skip
    assert status == 200 and ids(body) == ["p03"]


def test_cql2_json_post_body(client):
    body = {"op": "and", "args": [
        {"op": "like", "args": [{"op": "accenti", "args": [{"property": "name"}]}, "Caf%"]},
        {"op": "s_intersects", "args": [{"property": "geometry"},
                                        {"bbox": [9.9, 53.5, 10.0, 53.6]}]},
    ]}  # fmt: skip
    response = client.post(PLACES, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert ids(response.get_json()) == ["p10"]


def test_properties_skip_geometry_and_output_crs(client):
    status, body = get(client, PLACES, properties="name,storeys", skipGeometry="true", limit=2)
    assert status == 200
    assert [f["properties"] for f in body["features"]] == [
        {"name": "Wohnhaus", "storeys": 3},
        {"name": "Bürogebäude", "storeys": 5},
    ]
    assert [f["geometry"] for f in body["features"]] == [None, None]
    status, body = get(client, "/collections/places/items/p06", crs=EPSG_25832_URI)
    assert body["geometry"] == {"type": "Point", "coordinates": [STORE_X0 + 5, STORE_Y0 + 5]}
    status, body = get(client, "/collections/places/items/p06")  # CRS84 by default
    lon, lat = body["geometry"]["coordinates"]
    assert 9.9 < lon < 10.0 and 53.5 < lat < 53.6


def test_queryables_have_types(client):
    status, body = get(client, "/collections/places/queryables", f="json")
    assert status == 200
    properties = body["properties"]
    assert properties["storeys"]["type"] == "integer"
    assert properties["height"]["type"] == "number"
    assert properties["flat"]["type"] == "boolean"
    assert properties["built"] == {"title": "built", "type": "string", "format": "date"}
    assert properties["surveyed"]["format"] == "date-time"
    assert properties["geometry"]["x-ogc-role"] == "primary-geometry"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "storeys == 3"}, "unexpected '=' at column 10"),
        ({"filter": "storeys = "}, "it ends too early"),
        ({"filter": "colour = 'red'"}, "unknown property 'colour' in filter"),
        ({"filter": "storeys = 'drei'"}, "property 'storeys' is of type integer; 'drei' is not"),
        ({"filter": "UPPER(name) = 'X'"}, "unknown function 'upper'"),
        ({"filter": "{\"op\": \"=\", \"args\": [1]}", "filter-lang": "cql2-json"},
         "filter(=) needs 2 argument(s), got 1"),
        ({"filter": "storeys = 3", "filter-lang": "sql"}, "filter-lang 'sql' is not supported"),
        ({"filter": "storeys = 3", "filter-crs": "EPSG:x"}, "filter-crs 'EPSG:x' is not a CRS"),
        ({"storeys": "drei"}, "property 'storeys' is of type integer"),
        ({"datetime": "yesterday"}, "datetime"),
    ],
)  # fmt: skip
def test_invalid_filters_get_400_naming_the_problem(client, params, message):
    status, body = get(client, PLACES, **params)
    assert status == 400
    assert message in body["description"]


def test_invalid_json_body_gets_400(client):
    response = client.post(PLACES, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "CQL2-JSON filter is not valid JSON" in response.get_json()["description"]


def test_both_stores_give_the_same_answers(apps):
    """Whole responses, byte for byte but for the timestamp, on the demo district."""
    requests = [
        "/collections/buildings/items?limit=50&offset=1000",
        "/collections/buildings/items?filter=storeys > 3 AND function_name LIKE 'Wohn%'&limit=100",
        "/collections/buildings/items?filter=CASEI(district) = 'elbhöhe'&sortby=-measured_height"
        "&limit=20&crs=http://www.opengis.net/def/crs/EPSG/0/25832",
        "/collections/buildings/items?bbox=9.925,53.545,9.935,53.55&sortby=year_built,-id"
        "&limit=30&properties=storeys,year_built",
        "/collections/buildings/items?filter=S_INTERSECTS(geometry, BBOX(9.93,53.55,9.94,53.555))"
        " AND storeys IS NULL&skipGeometry=true&limit=200",
        "/collections/streets/items?filter=S_CROSSES(geometry, LINESTRING(9.92 53.55, 9.96 53.55))"
        "&limit=100",
        "/collections/streets/items?sortby=name&limit=100&resulttype=hits",
        "/collections/places/items?sortby=-surveyed&limit=12",
    ]
    for url in requests:
        answers = []
        for store in STORES:
            response = apps[store].test_client().get(url)
            assert response.status_code == 200, (store, url, response.get_data()[:300])
            body = response.get_json()
            body.pop("timeStamp", None)
            answers.append(body)
        assert answers[0] == answers[1], url
        if "hits" not in url:
            assert answers[0]["numberReturned"] > 0, url


# --- transactions ---------------------------------------------------------------------------

NOTES = "/collections/notes/items"
GEOJSON = "application/geo+json"


def note(id_=None, **properties) -> dict:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [9.94, 53.55]},
               "properties": properties}  # fmt: skip
    if id_ is not None:
        feature["id"] = id_
    return feature


def post(client, feature, content_type=GEOJSON):
    return client.post(NOTES, data=json.dumps(feature), content_type=content_type)


def test_transactions_create_replace_patch_delete(client):
    created = post(client, note("n1", text="Mehr Bäume", votes=3, public=True,
                                created="2024-05-01T10:00:00+02:00"))  # fmt: skip
    assert created.status_code == 201, created.get_json()
    assert created.headers["Location"].endswith("/collections/notes/items/n1")
    status, body = get(client, f"{NOTES}/n1")
    assert status == 200
    expected = {"id": "n1", "text": "Mehr Bäume", "votes": 3,
                "created": "2024-05-01T08:00:00.000Z", "public": True}  # fmt: skip
    assert body["properties"] == expected
    assert body["geometry"]["coordinates"] == pytest.approx([9.94, 53.55], abs=1e-9)

    generated = post(client, note(text="ohne id"), content_type=f"{GEOJSON}; charset=utf-8")
    assert generated.status_code == 201
    new_id = generated.headers["Location"].rsplit("/", 1)[1]
    assert len(new_id) == 32
    assert get(client, f"{NOTES}/{new_id}")[1]["properties"]["text"] == "ohne id"

    assert post(client, note("n1", text="again")).status_code == 409

    replaced = client.put(f"{NOTES}/n1", data=json.dumps(note(text="Weniger Autos")),
                          content_type=GEOJSON)  # fmt: skip
    assert replaced.status_code == 204, replaced.get_json()
    assert get(client, f"{NOTES}/n1")[1]["properties"] == {
        "id": "n1", "text": "Weniger Autos", "votes": None, "created": None, "public": None,
    }  # fmt: skip

    patched = client.patch(f"{NOTES}/n1", data=json.dumps({"properties": {"votes": 7}}),
                           content_type="application/merge-patch+json")  # fmt: skip
    assert patched.status_code == 204, patched.get_json()
    body = get(client, f"{NOTES}/n1")[1]
    assert body["properties"]["votes"] == 7 and body["properties"]["text"] == "Weniger Autos"
    assert body["geometry"] is not None

    moved = client.patch(f"{NOTES}/n1", data=json.dumps({"geometry": None}),
                         content_type="application/json")  # fmt: skip
    assert moved.status_code == 204
    assert get(client, f"{NOTES}/n1")[1]["geometry"] is None

    status, body = get(client, NOTES, filter="votes > 5")
    assert ids(body) == ["n1"]

    assert client.delete(f"{NOTES}/n1").status_code == 200
    assert get(client, f"{NOTES}/n1")[0] == 404
    assert client.delete(f"{NOTES}/n1").status_code == 404
    assert client.patch(f"{NOTES}/n1", data="{}").status_code == 404
    assert client.delete(f"{NOTES}/{new_id}").status_code == 200


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (note("x1", text="t", colour="red"), "unknown property 'colour'"),
        (note("x1", text="t", votes="viele"), "property 'votes' is of type integer; 'viele'"),
        (note("x1", text="t", created="gestern"), "property 'created' is of type date-time"),
        (note("x1", votes=1), "property 'text' is required"),
        ({**note("x1", text="t"), "geometry": {"type": "LineString", "coordinates": [[9.9, 53.5],
          [9.91, 53.51]]}}, "geometry must be a Point, got LineString"),
        ({"type": "FeatureCollection", "features": []}, "must be a GeoJSON Feature"),
        ({**note("x1", text="t"), "geometry": {"type": "Point"}}, "geometry is not valid GeoJSON"),
        ({**note("x1", text="t", id="x2")}, "differs from its property 'id'"),
    ],
)  # fmt: skip
def test_invalid_features_get_400_naming_the_property(client, feature, message):
    response = post(client, feature)
    assert response.status_code == 400
    assert message in response.get_json()["description"]
    assert get(client, f"{NOTES}/x1")[0] == 404


def test_put_checks_the_body_against_the_item(client):
    assert post(client, note("n2", text="t")).status_code == 201
    response = client.put(f"{NOTES}/n2", data=json.dumps(note("other", text="t")),
                          content_type=GEOJSON)  # fmt: skip
    assert response.status_code == 400
    assert "differs from the item's id 'n2'" in response.get_json()["description"]
    response = client.put(f"{NOTES}/nowhere", data=json.dumps(note(text="t")),
                          content_type=GEOJSON)  # fmt: skip
    assert response.status_code == 404
    assert client.delete(f"{NOTES}/n2").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", PLACES),
        ("put", f"{PLACES}/p01"),
        ("patch", f"{PLACES}/p01"),
        ("delete", f"{PLACES}/p01"),
    ],
)
def test_read_only_collections_answer_405(client, method, path):
    response = getattr(client, method)(path, data=json.dumps(note(text="t")),
                                       content_type=GEOJSON)  # fmt: skip
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert "collection 'places' is read-only" in response.get_json()["description"]
    assert get(client, f"{PLACES}/p01")[0] == 200


# --- the landing page and conformance ---------------------------------------------------------


def test_conformance_declares_what_qgis_needs_and_what_we_implement(client):
    classes = set(get(client, "/conformance", f="json")[1]["conformsTo"])
    assert {
        f"{FEATURES_3}/filter", f"{FEATURES_3}/features-filter", f"{CQL2}/cql2-text",
        f"{CQL2}/basic-cql2", f"{CQL2}/cql2-json", f"{CQL2}/advanced-comparison-operators",
        f"{CQL2}/case-insensitive-comparison", f"{CQL2}/accent-insensitive-comparison",
        f"{CQL2}/basic-spatial-functions", f"{CQL2}/basic-spatial-functions-plus",
        f"{CQL2}/spatial-functions", f"{CQL2}/property-property",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    } <= classes  # fmt: skip
    # Not implemented, so not declared.
    assert not {f"{CQL2}/temporal-functions", f"{CQL2}/array-functions", f"{CQL2}/arithmetic",
                f"{CQL2}/functions"} & classes  # fmt: skip


def test_landing_page_links_conformance_both_ways(client):
    links = get(client, "/", f="json")[1]["links"]
    rels = {link["rel"]: link["href"] for link in links}
    assert rels["conformance"] == rels["http://www.opengis.net/def/rel/ogc/1.0/conformance"]
