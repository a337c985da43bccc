"""Results collections: publish a job's features, read them back by job_id through the API."""

from __future__ import annotations

import pytest
from shapely.geometry import shape

from cut_processes.processes.publish import (
    RESULTS_COLLECTIONS,
    PublishError,
    ensure_results_collections,
    publish_feature_collection,
    publish_features,
)


def building(fid: str, lon: float, storeys: int, **extra) -> dict:
    d = 0.0002
    ring = [[lon, 53.55], [lon + d, 53.55], [lon + d, 53.55 + d], [lon, 53.55 + d], [lon, 53.55]]
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "id": fid, "function": "31001_1010", "measured_height": 12.5, "district": "Elbhöhe",
            "storeys_estimated": storeys, "storeys_range": [storeys - 1, storeys + 1],
            "confidence": 0.81, "method": "height", "model": "floor-count-height@1.0.0",
            "explanation": [{"factor": "measured height", "weight": 0.7}], "needs_review": False,
            **extra,
        },
    }  # fmt: skip


@pytest.fixture()
def results_store(tmp_path):
    store = tmp_path / "results.gpkg"
    expected = sorted(f"{process}-results" for process in RESULTS_COLLECTIONS)
    assert sorted(ensure_results_collections(store)) == expected
    assert "floor-count-results" in expected
    assert ensure_results_collections(store) == []  # only once
    return store


@pytest.fixture()
def results_client(app_env, results_store):
    from cut_processes.server import create_app

    env = {**app_env.environ(), "CUT_RESULTS_STORE": str(results_store)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        application = create_app(app_env.config, app_env.openapi)
    application.config["TESTING"] = True
    yield application.test_client()
    shutdown = getattr(application.config["CUT_PYGEOAPI"].manager, "shutdown", None)
    if shutdown is not None:
        shutdown()


def items(client, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/collections/floor-count-results/items?f=json&{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_an_empty_results_collection_is_served_before_the_first_publication(results_client):
    assert results_client.get("/health").status_code == 200
    assert items(results_client)["features"] == []
    queryables = results_client.get("/collections/floor-count-results/queryables?f=json")
    assert "job_id" in queryables.get_json()["properties"]


def test_published_jobs_are_layers_filtered_by_job_id(results_client, results_store):
    first = [building("B1", 9.93, 4), building("B2", 9.94, 5)]
    one = publish_feature_collection(
        "floor-count", "job-1", {"type": "FeatureCollection", "features": first},
        location=results_store, base_url="http://localhost",
    )  # fmt: skip
    assert one == {
        "collection": "floor-count-results",
        "count": 2,
        "href": "http://localhost/collections/floor-count-results/items?job_id=job-1",
    }
    second = {"type": "FeatureCollection", "features": [building("B1", 9.93, 3)]}
    publish_feature_collection("floor-count", "job-2", second, location=results_store)
    page = items(results_client, job_id="job-1")
    assert page["numberMatched"] == 2
    by_id = {f["properties"]["feature_id"]: f for f in page["features"]}
    b1 = by_id["B1"]["properties"]
    assert b1["job_id"] == "job-1" and b1["process_id"] == "floor-count"
    assert b1["storeys_estimated"] == 4 and b1["storeys_range"] == [3, 5]
    assert b1["needs_review"] is False and b1["confidence"] == pytest.approx(0.81)
    assert b1["explanation"] == [{"factor": "measured height", "weight": 0.7}]
    assert b1["attributes"] == {"district": "Elbhöhe"}  # not a column of the collection
    assert b1["published_at"].endswith("Z")
    # served in CRS84 where it was published
    x, y = shape(by_id["B1"]["geometry"]).centroid.coords[0]
    assert x == pytest.approx(9.9301, abs=1e-4) and y == pytest.approx(53.5501, abs=1e-4)
    assert [f["properties"]["storeys_estimated"] for f in items(results_client, job_id="job-2")[
        "features"]] == [3]  # fmt: skip


def test_publishing_a_job_again_replaces_its_features(results_client, results_store):
    collection = {"type": "FeatureCollection", "features": [building("B1", 9.93, 4)]}
    publish_feature_collection("floor-count", "job-7", collection, location=results_store)
    collection["features"].append(building("B2", 9.94, 2))
    again = publish_feature_collection("floor-count", "job-7", collection, location=results_store)
    assert again["count"] == 2
    assert items(results_client, job_id="job-7")["numberMatched"] == 2


def test_features_that_do_not_fit_the_collection_are_refused(results_store):
    with pytest.raises(PublishError, match="field 'confidence' is number, not string"):
        publish_features(
            "floor-count", "job-9", [], {"confidence": "string"}, "MultiPolygon",
            location=results_store,
        )  # fmt: skip
    with pytest.raises(PublishError, match="holds MultiPolygon in EPSG:25832, not Point"):
        publish_features("floor-count", "job-9", [], {}, "Point", location=results_store)
    with pytest.raises(PublishError, match="needs the job id"):
        publish_features("floor-count", "", [], {}, "MultiPolygon", location=results_store)


def test_unregistered_processes_get_a_collection_of_their_own_fields(tmp_path):
    from cut_processes.io.store import open_store

    store = tmp_path / "results.gpkg"
    feature = {"type": "Feature", "id": "s1", "geometry": {"type": "Point",
               "coordinates": [562000.0, 5934000.0]}, "properties": {"volume": 12}}  # fmt: skip
    result = publish_features(
        "cycling-volumes", "job-3", [feature], {"volume": "integer"}, "Point", location=store
    )
    assert result["collection"] == "cycling-volumes-results" and result["count"] == 1
    assert open_store(store).count("cycling-volumes-results") == 1
