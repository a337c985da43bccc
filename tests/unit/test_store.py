"""cut_processes.io.store on both backends: writing, atomic replacement, checks, the demo loader."""

from __future__ import annotations

import shutil
import subprocess
import threading

import fiona
import pytest
import shapely
from feature_store_data import (
    STORE_PLACES_FIELDS,
    STORE_X0,
    STORE_Y0,
    store_places,
    store_provider_def,
)

from cut_processes.io.store import (
    GeoPackageStore,
    PostGISStore,
    demo_layers,
    load_demo_into,
    open_store,
)
from cut_processes.providers import FeatureProvider


@pytest.fixture(params=["geopackage", "postgis"])
def location(request, tmp_path) -> str:
    """An empty store: a new GeoPackage path, or the PostGIS test database."""
    if request.param == "geopackage":
        return str(tmp_path / "store.gpkg")
    return request.getfixturevalue("postgis_url")


def unique(name: str, request) -> str:
    """A collection name of its own per test (the PostGIS database is shared)."""
    return f"{name}_{abs(hash(request.node.nodeid)) % 10**8}"


def point(x: float, y: float, **properties) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [STORE_X0 + x,
            STORE_Y0 + y]}, "properties": properties}  # fmt: skip


def read_ids(location: str, name: str, **query) -> list:
    provider = FeatureProvider(store_provider_def(location, table=name))
    return [f["id"] for f in provider.query(limit=1000, **query)["features"]]


def test_open_store_chooses_the_backend(tmp_path, postgis_url):
    assert isinstance(open_store(tmp_path / "a.gpkg"), GeoPackageStore)
    assert (tmp_path / "a.gpkg").is_file()  # created, as an empty GeoPackage
    assert open_store(tmp_path / "a.gpkg").collections() == []
    assert isinstance(open_store(postgis_url), PostGISStore)


def test_replace_writes_what_the_provider_reads(location, request):
    name = unique("places", request)
    store = open_store(location)
    written = store.replace_collection(
        name, store_places(), fields=STORE_PLACES_FIELDS, geometry_type="Geometry"
    )
    assert written == 12 and store.count(name) == 12
    assert name in store.collections()
    provider = FeatureProvider(store_provider_def(location, table=name))
    assert provider.fields["storeys"] == {"type": "integer"}
    assert provider.fields["surveyed"] == {"type": "string", "format": "date-time"}
    assert provider.fields["tags"] == {"type": "object"}
    p04 = provider.get("p04")
    assert p04["properties"]["surveyed"] == "2024-03-03T10:00:00.000Z"  # UTC, as stored
    assert p04["properties"]["flat"] is True
    assert provider.get("p06")["properties"]["tags"] == {"rooms": [1, 2]}
    assert provider.get("p05")["geometry"] is None
    assert read_ids(location, name) == [f"p{i:02d}" for i in range(1, 13)]  # insertion order


def test_gdal_reads_the_geopackage_we_write(tmp_path):
    path = tmp_path / "gdal.gpkg"
    open_store(path).replace_collection(
        "places", store_places(), fields=STORE_PLACES_FIELDS, geometry_type="Geometry"
    )
    with fiona.open(path, layer="places") as layer:
        assert len(layer) == 12
        assert layer.crs.to_epsg() == 25832
        schema = layer.schema["properties"]
        assert schema["storeys"].startswith("int") and schema["height"].startswith("float")
        assert schema["built"] == "date" and schema["surveyed"] == "datetime"
        records = {r.properties["id"]: r for r in layer}
    assert records["p02"].properties["name"] == "Bürogebäude"
    assert shapely.geometry.shape(records["p01"].geometry).area == pytest.approx(100.0)
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo:  # GDAL's own checks of the spatial index and metadata tables
        out = subprocess.run([ogrinfo, "-ro", "-so", str(path), "places"], capture_output=True,
                             text=True, check=True, timeout=60).stdout  # fmt: skip
        assert "Feature Count: 12" in out
        assert "tags: String (0.0)" in out or "tags: String(JSON)" in out


def test_replace_changes_the_schema_and_is_atomic(location, request):
    name = unique("swap", request)
    store = open_store(location)
    store.replace_collection(name, [point(0, 0, id="a", n=1)], fields={"n": "integer"},
                             geometry_type="Point")  # fmt: skip
    bad = [point(1, 1, id="b", label="x"), point(2, 2, id="c", label=3)]
    with pytest.raises(ValueError, match=r"feature 1 \(id 'c'\): property 'label' is of type"):
        store.replace_collection(name, bad, fields={"label": "string"}, geometry_type="Point")
    assert read_ids(location, name) == ["a"]  # the old collection, untouched
    store.replace_collection(name, bad[:1], fields={"label": "string"}, geometry_type="Point")
    provider = FeatureProvider(store_provider_def(location, table=name))
    assert list(provider.fields) == ["id", "label"]
    assert provider.get("b")["properties"] == {"id": "b", "label": "x"}


def test_readers_see_the_old_or_the_new_collection(location, request):
    name = unique("readers", request)
    store = open_store(location)
    small = [point(i, 0, id=f"s{i}") for i in range(10)]
    large = [point(i, 1, id=f"l{i}") for i in range(500)]
    store.replace_collection(name, small, fields={}, geometry_type="Point")
    provider = FeatureProvider(store_provider_def(location, table=name))
    seen, stop = set(), threading.Event()

    def read() -> None:
        while not stop.is_set():
            reader = FeatureProvider(store_provider_def(location, table=name))
            seen.add(reader.query(resulttype="hits")["numberMatched"])

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for features in (large, small, large):
            store.replace_collection(name, features, fields={}, geometry_type="Point")
    finally:
        stop.set()
        thread.join()
    assert seen <= {10, 500}
    assert provider.query(resulttype="hits")["numberMatched"] == 500


def test_append_creates_extends_and_delete_removes(location, request):
    name = unique("results", request)
    store = open_store(location)
    assert store.append_features(name, [], fields={"job_id": "string"}, geometry_type="Point") == 0
    assert name in store.collections() and store.count(name) == 0
    first = [point(0, 0, id="a", job_id="j1"), point(1, 0, id="b", job_id="j1")]
    store.append_features(name, first, fields={"job_id": "string"}, geometry_type="Point")
    second = [point(2, 0, id="c", job_id="j2", score=0.5)]
    fields = {"job_id": "string", "score": "number"}
    store.append_features(name, second, fields=fields, geometry_type="Point")
    assert read_ids(location, name) == ["a", "b", "c"]
    provider = FeatureProvider(store_provider_def(location, table=name))
    assert provider.get("a")["properties"]["score"] is None
    assert provider.get("c")["properties"]["score"] == 0.5
    assert store.delete_features(name, {"job_id": "j1"}) == 2
    assert store.delete_features(name, {"score": None}) == 0
    assert read_ids(location, name) == ["c"]
    assert store.delete_features("no-such-collection", {"job_id": "j1"}) == 0
    with pytest.raises(ValueError, match="has no field 'colour'"):
        store.delete_features(name, {"colour": "red"})
    with pytest.raises(ValueError, match="field 'score' is number in the store, not string"):
        store.append_features(name, [], fields={"score": "string"}, geometry_type="Point")


@pytest.mark.parametrize(
    ("features", "fields", "geometry_type", "message"),
    [
        ([point(0, 0, id="a", colour="red")], {}, "Point", "property 'colour' is not in fields"),
        ([point(0, 0, id="a", n="3")], {"n": "integer"}, "Point", "'n' is of type integer"),
        ([point(0, 0, id="a", n=float("nan"))], {"n": "number"}, "Point", "of type number"),
        ([point(0, 0, id="a", d="2024-13-01")], {"d": "date"}, "Point", "of type date"),
        ([point(0, 0, id="a")], {}, "Polygon", "geometry is a Point, the collection takes Polygon"),
        ([point(0, 0)], {}, "Point", "feature 0 (id None): no id"),
        ([point(0, 0, id="a"), point(1, 0, id="a")], {}, "Point", "the id occurs twice"),
        ([], {"fid": "integer"}, "Point", "field name 'fid' is reserved"),
        ([], {"n": "float"}, "Point", "field 'n' has kind 'float'"),
        ([], {}, "Blob", "geometry type 'Blob' is not one of"),
    ],
)  # fmt: skip
def test_bad_writes_are_refused_by_name(location, request, features, fields, geometry_type,
                                        message):  # fmt: skip
    import re

    name = unique("bad", request)
    with pytest.raises(ValueError, match=re.escape(message)):
        open_store(location).replace_collection(
            name, features, fields=fields, geometry_type=geometry_type
        )
    assert name not in open_store(location).collections()


def test_count_of_a_missing_collection_names_it(location):
    with pytest.raises(ValueError, match="collection 'nowhere' is not in"):
        open_store(location).count("nowhere")


def test_load_demo_into_copies_the_served_layers(demo_dir, location):
    layers = demo_layers(demo_dir)
    assert {"buildings", "streets"} <= set(layers) and "buildings_truth" not in layers
    written = load_demo_into(location, demo_dir)
    assert set(written) == set(layers)
    source = str(demo_dir / "district.gpkg")
    for layer in ("buildings", "streets"):
        ours = FeatureProvider(store_provider_def(location, table=layer))
        theirs = FeatureProvider(store_provider_def(source, table=layer))
        assert ours.fields == theirs.fields
        query = {"limit": 50, "offset": 100, "sortby": [{"property": "id", "order": "-"}]}
        assert ours.query(**query) == theirs.query(**query)
        assert ours.query(resulttype="hits") == theirs.query(resulttype="hits")


def test_demo_command_loads_the_district_into_cut_store(demo_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cut_processes.cli import main

    target = tmp_path / "store.gpkg"
    monkeypatch.setenv("CUT_STORE", str(target))
    result = CliRunner().invoke(main, ["demo", "--out", str(demo_dir)])
    assert result.exit_code == 0, result.output
    assert f"demo district loaded into {target}" in result.output
    assert set(demo_layers(demo_dir)) <= set(open_store(target).collections())
    assert open_store(target).count("streets") == open_store(demo_dir / "district.gpkg").count(
        "streets"
    )


def test_transactions_when_the_integer_key_is_the_id(location, request):
    from pygeoapi.provider.base import ProviderGenericError

    name = unique("keyed", request)
    open_store(location).replace_collection(
        name, [point(0, 0, id="a", n=1)], fields={"n": "integer"}, geometry_type="Point"
    )
    definition = store_provider_def(location, table=name, editable=True)
    del definition["id_field"]  # the integer key (fid) is the id
    provider = FeatureProvider(definition)
    assert provider.id_field == "fid"
    body = {"type": "Feature", "geometry": None, "properties": {"id": "b", "n": 2}}
    assert provider.create(body) == 2  # assigned by the database
    assert provider.get(2)["properties"]["n"] == 2
    with pytest.raises(ProviderGenericError, match="assigned by the server"):
        provider.create({**body, "id": 9})
    provider.patch("2", b'{"properties": {"n": 5}}')
    assert provider.get("2")["properties"]["n"] == 5
    assert provider.delete(2) is True
    assert read_ids(location, name) == ["a"]
