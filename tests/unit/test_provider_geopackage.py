"""GeoPackageProvider: a small GeoPackage written by fiona (GDAL) in EPSG:25832, exact answers."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
import types
from pathlib import Path

import fiona
import numpy as np
import pyproj
import pytest
import shapely
from pygeoapi.api import API, APIRequest
from pygeoapi.api.itemtypes import get_collection_items, get_collection_queryables
from pygeoapi.crs import create_crs_transform_spec, get_transform_from_spec
from pygeoapi.provider.base import (
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from shapely.geometry import mapping, shape
from werkzeug.test import create_environ
from werkzeug.wrappers import Request

from cut_processes.providers import GeoPackageProvider
from cut_processes.providers.geojson_geometry import to_geojson_geometries
from cut_processes.providers.gpkg_binary import (
    GeoPackageBlobError,
    blob_intersects_box,
    geometries_from_blobs,
)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG_25832 = "http://www.opengis.net/def/crs/EPSG/0/25832"
X0, Y0 = 562000.0, 5934000.0

SCHEMA = {
    "geometry": "Polygon",
    "properties": {
        "id": "str",
        "function_name": "str",
        "storeys": "int",
        "height": "float",
        "flat": "bool",
        "built": "date",
        "surveyed": "datetime",
    },
}


def square(x: float, y: float, size: float) -> list:
    return [[(x, y), (x + size, y), (x + size, y + size), (x, y + size), (x, y)]]


def building(id_, rings, function_name, storeys, height, flat, built, surveyed) -> dict:
    geometry = None if rings is None else {"type": "Polygon", "coordinates": rings}
    return {
        "geometry": geometry,
        "properties": {
            "id": id_,
            "function_name": function_name,
            "storeys": storeys,
            "height": height,
            "flat": flat,
            "built": built,
            "surveyed": surveyed,
        },
    }


# Written in this order: fid 1..26.
HOLED = [
    [(X0 + 20, Y0), (X0 + 40, Y0), (X0 + 40, Y0 + 20), (X0 + 20, Y0 + 20), (X0 + 20, Y0)],
    [
        (X0 + 25, Y0 + 5),
        (X0 + 25, Y0 + 10),
        (X0 + 30, Y0 + 10),
        (X0 + 30, Y0 + 5),
        (X0 + 25, Y0 + 5),
    ],
]
TRIANGLE = [[(X0 + 100, Y0), (X0 + 120, Y0), (X0 + 100, Y0 + 20), (X0 + 100, Y0)]]
FEATURES = [
    building(
        "b01", square(X0, Y0, 10), "Wohnhaus", 3, 9.5, True, "1990-05-01", "2024-03-01T10:00:00"
    ),
    building("b02", HOLED, "Bürogebäude", 5, 17.25, False, "2005-11-30", "2024-03-02T08:30:00Z"),
    building("b03", square(X0 + 50, Y0, 10), "Wohnhaus", None, None, None, None, None),
    building("b04", TRIANGLE, "Garage", 1, 3.0, True, "2010-01-01", "2024-03-03T12:00:00+02:00"),
    building("b05", None, "Schuppen", 1, 2.5, False, "2011-06-15", "2024-03-03T23:30:00Z"),
    building("b06", [], "Grünes Haus", 2, 6.0, False, "2012-02-29", "2024-03-04T00:00:00Z"),
] + [
    building(
        f"g{i:02d}",
        square(X0 + 10 * i, Y0 + 100, 5),
        "Wohnhaus" if i % 2 else "Garage",
        None if i % 5 == 0 else i % 4 + 1,
        1.5 * i,
        i % 2 == 0,
        f"19{50 + i}-01-01",
        None,
    )
    for i in range(20)
]
ALL_IDS = [f["properties"]["id"] for f in FEATURES]


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gpkg") / "district.gpkg"
    write_gpkg(path, FEATURES)
    return path


def write_gpkg(path: Path, features: list, crs: str = "EPSG:25832") -> None:
    with fiona.open(path, "w", driver="GPKG", crs=crs, schema=SCHEMA, layer="buildings") as dst:
        dst.writerecords(features)


def provider_def(path: Path, **extra) -> dict:
    return {
        "type": "feature",
        "name": "cut_processes.providers.GeoPackageProvider",
        "data": str(path),
        "table": "buildings",
        "id_field": "id",
        "title_field": "function_name",
        "storage_crs": EPSG_25832,
        "crs": [CRS84, EPSG_25832, EPSG_4326],
        **extra,
    }


@pytest.fixture
def provider(gpkg) -> GeoPackageProvider:
    return GeoPackageProvider(provider_def(gpkg))


def ids(collection: dict) -> list[str]:
    return [f["id"] for f in collection["features"]]


def by_id(collection: dict) -> dict:
    return {f["id"]: f for f in collection["features"]}


# --- fields and configuration ---------------------------------------------------------------------


def test_fields_have_json_types_from_the_gpkg_column_types(provider):
    assert provider.fields == {
        "id": {"type": "string"},
        "function_name": {"type": "string"},
        "storeys": {"type": "integer"},
        "height": {"type": "number"},
        "flat": {"type": "boolean"},
        "built": {"type": "string", "format": "date"},
        "surveyed": {"type": "string", "format": "date-time"},
    }


def test_fields_are_not_shared_between_instances(gpkg):
    first = GeoPackageProvider(provider_def(gpkg))
    first.fields["storeys"]["x-ogc-role"] = "changed by pygeoapi"
    assert "x-ogc-role" not in GeoPackageProvider(provider_def(gpkg)).fields["storeys"]


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.gpkg"
    with pytest.raises(ProviderConnectionError, match=r"nowhere\.gpkg does not exist"):
        GeoPackageProvider(provider_def(missing))


def test_missing_table_is_named_with_the_tables_there_are(gpkg):
    with pytest.raises(
        ProviderConnectionError, match=r"'roofs' is not a features table.*buildings"
    ):
        GeoPackageProvider({**provider_def(gpkg), "table": "roofs"})


def test_missing_id_field_is_named(gpkg):
    with pytest.raises(ProviderConnectionError, match="id_field 'uuid' is not a column"):
        GeoPackageProvider({**provider_def(gpkg), "id_field": "uuid"})


def test_file_that_is_not_a_geopackage_is_refused(tmp_path):
    path = tmp_path / "plain.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE buildings (id TEXT)")
    connection.close()
    with pytest.raises(ProviderConnectionError, match=r"plain\.sqlite is not a GeoPackage"):
        GeoPackageProvider(provider_def(path))


def test_storage_crs_contradicting_the_gpkg_srs_is_refused(gpkg):
    with pytest.raises(ProviderConnectionError, match="does not match EPSG:25832"):
        GeoPackageProvider({**provider_def(gpkg), "storage_crs": EPSG_4326})


def test_without_id_field_the_primary_key_is_the_id(gpkg):
    definition = provider_def(gpkg)
    del definition["id_field"]
    provider = GeoPackageProvider(definition)
    assert provider.id_field == "fid"
    assert ids(provider.query(limit=3)) == [1, 2, 3]
    assert provider.get("2")["properties"]["id"] == "b02"


def test_time_field_must_be_a_time_column(gpkg):
    with pytest.raises(ProviderConnectionError, match="time_field 'storeys'"):
        GeoPackageProvider(provider_def(gpkg, time_field="storeys"))


# --- paging, hits ---------------------------------------------------------------------------------


def test_paging_walks_all_features_in_storage_order(provider):
    pages = [provider.query(offset=offset, limit=10) for offset in (0, 10, 20)]
    assert [page["numberReturned"] for page in pages] == [10, 10, 6]
    assert {page["numberMatched"] for page in pages} == {26}
    assert [i for page in pages for i in ids(page)] == ALL_IDS


def test_hits_counts_without_features(provider):
    hits = provider.query(resulttype="hits", properties=[("function_name", "Wohnhaus")])
    assert hits["numberMatched"] == 12
    assert hits["features"] == []
    assert hits["numberReturned"] == 0


def test_count_false_omits_number_matched(gpkg):
    provider = GeoPackageProvider(provider_def(gpkg, count=False))
    page = provider.query(limit=2)
    assert "numberMatched" not in page
    assert page["numberReturned"] == 2


def test_features_carry_id_and_all_properties(provider):
    feature = provider.query(limit=1)["features"][0]
    assert feature["type"] == "Feature"
    assert feature["id"] == "b01"
    assert feature["properties"] == {
        "id": "b01",
        "function_name": "Wohnhaus",
        "storeys": 3,
        "height": 9.5,
        "flat": True,
        "built": "1990-05-01",
        "surveyed": "2024-03-01T10:00:00.000",
    }
    assert feature["properties"]["flat"] is True


def test_nulls_stay_null(provider):
    assert provider.get("b03")["properties"] == {
        "id": "b03",
        "function_name": "Wohnhaus",
        "storeys": None,
        "height": None,
        "flat": None,
        "built": None,
        "surveyed": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": -1}, "offset must be >= 0"),
        ({"limit": "ten"}, "limit must be an integer"),
        ({"resulttype": "count"}, "resulttype must be 'results' or 'hits'"),
        ({"q": "Wohnhaus"}, "q \\(free-text search\\) is not supported"),
        ({"filterq": object()}, "filter must be text"),
        ({"bbox": [1, 2, 3]}, "bbox must have 4 or 6 numbers"),
    ],
)
def test_bad_query_parameters_are_refused(provider, kwargs, message):
    with pytest.raises(ProviderInvalidQueryError, match=message) as err:
        provider.query(**kwargs)
    assert err.value.http_status_code == 400


# --- bbox -----------------------------------------------------------------------------------------


def test_bbox_in_storage_crs_selects_intersecting_features(provider):
    box = [X0 - 1, Y0 - 1, X0 + 22, Y0 + 1]  # b01 and the outer ring of b02
    assert ids(provider.query(bbox=box)) == ["b01", "b02"]
    assert provider.query(bbox=box)["numberMatched"] == 2


def test_bbox_is_exact_not_envelope(provider):
    # Overlaps the triangle's envelope (x 100..120, y 0..20) but not the triangle itself.
    beside_hypotenuse = [X0 + 115, Y0 + 15, X0 + 130, Y0 + 30]
    assert provider.query(bbox=beside_hypotenuse)["numberMatched"] == 0
    touching_hypotenuse = [X0 + 110, Y0 + 10, X0 + 130, Y0 + 30]
    assert ids(provider.query(bbox=touching_hypotenuse)) == ["b04"]


def test_bbox_inside_a_hole_touches_nothing(provider):
    assert provider.query(bbox=[X0 + 26, Y0 + 6, X0 + 29, Y0 + 9])["numberMatched"] == 0


def test_bbox_never_selects_null_or_empty_geometries(provider):
    everything = provider.query(bbox=[X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000], limit=100)
    assert ids(everything) == [i for i in ALL_IDS if i not in ("b05", "b06")]


def test_bbox_with_z_uses_x_and_y(provider):
    box = [X0 - 1, Y0 - 1, -100, X0 + 22, Y0 + 1, 100]
    assert ids(provider.query(bbox=box)) == ["b01", "b02"]


def test_bbox_paging_and_count_agree(provider):
    box = [X0 - 1, Y0 + 99, X0 + 97, Y0 + 106]  # grid squares g00..g09
    first, second = (provider.query(bbox=box, offset=o, limit=6) for o in (0, 6))
    assert first["numberMatched"] == second["numberMatched"] == 10
    assert ids(first) + ids(second) == [f"g{i:02d}" for i in range(10)]


def test_bbox_without_spatial_index_gives_the_same_answers(gpkg, tmp_path):
    unindexed = tmp_path / "unindexed.gpkg"
    unindexed.write_bytes(gpkg.read_bytes())
    with sqlite3.connect(unindexed) as connection:
        connection.execute("DROP TABLE rtree_buildings_geom")
    connection.close()
    provider = GeoPackageProvider(provider_def(unindexed))
    assert provider.table.spatial_index is None
    assert ids(provider.query(bbox=[X0 - 1, Y0 - 1, X0 + 22, Y0 + 1])) == ["b01", "b02"]
    assert provider.query(bbox=[X0 + 115, Y0 + 15, X0 + 130, Y0 + 30])["numberMatched"] == 0


# --- property filters, sorting, selection ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("storeys", "5", ["b02"]),
        ("storeys", "5.0", ["b02"]),
        ("height", "17.25", ["b02"]),
        ("height", "3", ["b04", "g02"]),
        ("flat", "true", ["b01", "b04"] + [f"g{i:02d}" for i in range(0, 20, 2)]),
        ("function_name", "Bürogebäude", ["b02"]),
        ("built", "2012-02-29", ["b06"]),
        ("id", "g07", ["g07"]),
    ],
)
def test_property_equality_with_type_cast(provider, name, value, expected):
    assert ids(provider.query(properties=[(name, value)], limit=100)) == expected


def test_property_filters_combine_with_and(provider):
    found = provider.query(properties=[("function_name", "Garage"), ("storeys", "1")], limit=100)
    assert ids(found) == ["b04", "g04", "g08", "g12", "g16"]


@pytest.mark.parametrize(
    ("name", "value"), [("storeys", "drei"), ("storeys", "2.5"), ("height", "x"), ("flat", "ja")]
)
def test_property_value_not_of_the_column_type_is_refused(provider, name, value):
    with pytest.raises(ProviderInvalidQueryError, match=f"property '{name}' is of type"):
        provider.query(properties=[(name, value)])


def test_unknown_property_is_refused_by_name(provider):
    with pytest.raises(ProviderInvalidQueryError, match="unknown property 'colour'"):
        provider.query(properties=[("colour", "red")])
    with pytest.raises(ProviderInvalidQueryError, match="unknown property 'colour' in sortby"):
        provider.query(sortby=[{"property": "colour", "order": "+"}])
    with pytest.raises(ProviderInvalidQueryError, match="unknown property 'colour' in properties"):
        provider.query(select_properties=["colour"])


def expected_order(name: str, descending: bool) -> list[str]:
    """Oracle: values sorted, nulls last in both directions, ties in storage (fid) order."""
    present = [(f["properties"][name], fid) for fid, f in enumerate(FEATURES)]
    values = sorted((p for p in present if p[0] is not None), key=lambda p: p[1])
    values.sort(key=lambda p: p[0], reverse=descending)
    nulls = [p for p in present if p[0] is None]
    return [FEATURES[fid]["properties"]["id"] for _, fid in values + nulls]


@pytest.mark.parametrize("order", ["+", "-"])
@pytest.mark.parametrize("name", ["storeys", "height", "function_name", "built"])
def test_sortby_puts_nulls_last(provider, name, order):
    found = provider.query(sortby=[{"property": name, "order": order}], limit=100)
    assert ids(found) == expected_order(name, order == "-")


def test_sortby_hand_checked(provider):
    found = provider.query(sortby=[{"property": "storeys", "order": "-"}], limit=3)
    assert ids(found) == ["b02", "g03", "g07"]  # 5, then the 4s in storage order
    ascending = provider.query(sortby=[{"property": "storeys", "order": "+"}], offset=22, limit=10)
    assert ids(ascending) == ["g00", "g05", "g10", "g15"]  # the nulls, last
    assert ids(provider.query(sortby=[{"property": "function_name", "order": "+"}], limit=2)) == [
        "b02",
        "b04",
    ]


def test_sortby_order_must_be_plus_or_minus(provider):
    with pytest.raises(ProviderInvalidQueryError, match="sortby order of 'height' must be"):
        provider.query(sortby=[{"property": "height", "order": "up"}])


def test_sortby_several_keys(provider):
    found = provider.query(
        sortby=[{"property": "function_name", "order": "-"}, {"property": "height", "order": "-"}],
        limit=3,
    )
    assert ids(found) == ["g19", "g17", "g15"]


def test_select_properties_keeps_id_and_geometry(provider):
    feature = provider.query(select_properties=["storeys", "function_name"], limit=1)["features"][0]
    assert feature["id"] == "b01"
    assert feature["properties"] == {"storeys": 3, "function_name": "Wohnhaus"}
    assert feature["geometry"]["type"] == "Polygon"


def test_configured_properties_restrict_the_output(gpkg):
    provider = GeoPackageProvider(provider_def(gpkg, properties=["id", "height"]))
    assert provider.query(limit=1)["features"][0]["properties"] == {"id": "b01", "height": 9.5}


def test_skip_geometry(provider):
    page = provider.query(skip_geometry=True, limit=3)
    assert [f["geometry"] for f in page["features"]] == [None, None, None]
    assert page["features"][1]["properties"]["function_name"] == "Bürogebäude"


# --- datetime -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datetime_", "expected"),
    [
        ("2024-03-03T10:00:00Z", ["b04"]),  # stored as 12:00+02:00
        ("2024-03-01T10:00:00", ["b01"]),
        ("2024-03-02T00:00:00Z/2024-03-03T23:59:59Z", ["b02", "b04", "b05"]),
        ("../2024-03-01T10:00:00Z", ["b01"]),
        ("2024-03-03/..", ["b04", "b05", "b06"]),
        ("/2024-03-02", ["b01", "b02"]),
        ("2024-03-03", ["b04", "b05"]),  # a date instant is that whole day
        ("../..", ["b01", "b02", "b04", "b05", "b06"]),
    ],
)
def test_datetime_on_a_datetime_column(gpkg, datetime_, expected):
    provider = GeoPackageProvider(provider_def(gpkg, time_field="surveyed"))
    assert ids(provider.query(datetime_=datetime_, limit=100)) == expected


@pytest.mark.parametrize(
    ("datetime_", "expected"),
    [
        ("1990-05-01", ["b01"]),
        ("2000-01-01/2010-01-01", ["b02", "b04"]),
        ("2011-06-15T12:00:00Z/..", ["b05", "b06"]),
    ],
)
def test_datetime_on_a_date_column(gpkg, datetime_, expected):
    provider = GeoPackageProvider(provider_def(gpkg, time_field="built"))
    assert ids(provider.query(datetime_=datetime_, limit=100)) == expected


def test_datetime_errors(gpkg, provider):
    with pytest.raises(ProviderInvalidQueryError, match="no time field"):
        provider.query(datetime_="2024-03-03")
    timed = GeoPackageProvider(provider_def(gpkg, time_field="surveyed"))
    with pytest.raises(ProviderInvalidQueryError, match="'yesterday' is not an RFC 3339"):
        timed.query(datetime_="yesterday")


# --- get ------------------------------------------------------------------------------------------


def test_get_returns_one_feature(provider):
    feature = provider.get("b02")
    assert feature["id"] == "b02"
    assert feature["properties"]["height"] == 17.25
    assert feature["geometry"]["type"] == "Polygon"


def test_get_unknown_id_is_not_found(provider):
    with pytest.raises(ProviderItemNotFoundError, match="item b99 not found") as err:
        provider.get("b99")
    assert err.value.http_status_code == 404


def test_get_with_integer_primary_key_and_bad_identifier(gpkg):
    definition = provider_def(gpkg)
    del definition["id_field"]
    with pytest.raises(ProviderItemNotFoundError):
        GeoPackageProvider(definition).get("b01")


# --- geometries and CRS ---------------------------------------------------------------------------


def test_polygon_with_hole_round_trips_exactly(provider):
    geometry = provider.get("b02")["geometry"]
    assert geometry == {"type": "Polygon", "coordinates": [[list(p) for p in r] for r in HOLED]}


def test_geometries_equal_what_gdal_reads(provider, gpkg):
    ours = by_id(provider.query(limit=100))
    with fiona.open(gpkg) as src:
        for record in src:
            expected = None if record.geometry is None else mapping(shape(record.geometry))
            got = ours[record.properties["id"]]["geometry"]
            if expected is None or shape(record.geometry).is_empty:
                assert got is None
            else:
                assert shape(got).equals_exact(shape(expected), 0)


def test_null_and_empty_geometries_are_null(provider):
    assert provider.get("b05")["geometry"] is None
    assert provider.get("b06")["geometry"] is None  # GDAL wrote the empty flag


def test_crs84_output_equals_pyproj_transform(gpkg, provider):
    spec = create_crs_transform_spec(provider_def(gpkg), CRS84)
    ours = by_id(provider.query(limit=100, crs_transform_spec=spec))
    to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84")
    for feature in FEATURES:
        rings = feature["geometry"] and feature["geometry"]["coordinates"]
        if not rings:
            continue
        stored = np.array([p for ring in rings for p in ring])
        lon, lat = to_crs84.transform(stored[:, 0], stored[:, 1])
        got = np.array(
            [
                p
                for ring in ours[feature["properties"]["id"]]["geometry"]["coordinates"]
                for p in ring
            ]
        )
        assert 9.9 < got[0, 0] < 10.0 and 53.5 < got[0, 1] < 53.6  # lon, lat
        np.testing.assert_allclose(got, np.column_stack([lon, lat]), rtol=0, atol=1e-9)


def test_default_output_crs_of_pygeoapi_is_crs84(gpkg):
    spec = create_crs_transform_spec(provider_def(gpkg), None)
    assert spec.target_crs_uri == CRS84


@pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")
@pytest.mark.parametrize("always_xy", [False, True])
def test_epsg4326_axis_order_matches_pygeoapi(gpkg, always_xy):
    definition = provider_def(gpkg, always_xy=always_xy)
    spec = create_crs_transform_spec(definition, EPSG_4326)
    provider = GeoPackageProvider(definition)
    plain = by_id(provider.query(limit=100))
    ours = by_id(provider.query(limit=100, crs_transform_spec=spec))
    transform = get_transform_from_spec(spec)
    for id_, feature in plain.items():
        if feature["geometry"] is None:
            assert ours[id_]["geometry"] is None
            continue
        expected = mapping(transform(shape(feature["geometry"])))
        assert shape(ours[id_]["geometry"]).equals_exact(shape(expected), 1e-12)
    first = ours["b01"]["geometry"]["coordinates"][0][0]
    # pygeoapi's default (always_xy false) gives EPSG:4326 axis order: latitude first.
    assert (53.5 < first[0] < 53.6) is (not always_xy)


def test_get_transforms_too(gpkg, provider):
    spec = create_crs_transform_spec(provider_def(gpkg), CRS84)
    from_page = by_id(provider.query(limit=1, crs_transform_spec=spec))["b01"]
    assert provider.get("b01", crs_transform_spec=spec) == from_page


# --- comparison with pygeoapi's own SQLite/GeoPackage provider ------------------------------------


def _spatialite_loads() -> bool:
    connection = sqlite3.connect(":memory:")
    try:
        connection.enable_load_extension(True)
        connection.load_extension(os.getenv("SPATIALITE_LIBRARY_PATH", "mod_spatialite.so"))
    except (AttributeError, sqlite3.OperationalError):
        return False
    finally:
        connection.close()
    return True


def _as_geojson(blob: bytes | None) -> str | None:
    """Stand-in for SpatiaLite's AsGeoJSON on GeoPackage blobs, written independently."""
    if blob is None or blob[3] & 0x10:
        return None
    envelope = (0, 32, 48, 48, 64)[(blob[3] >> 1) & 0x07]
    return json.dumps(mapping(shapely.from_wkb(blob[8 + envelope :])))


class _StandInConnection(sqlite3.Connection):
    """A plain sqlite3 connection offering what SQLiteGPKGProvider asks of SpatiaLite."""

    def enable_load_extension(self, enabled: bool) -> None:
        pass


def _stand_in_connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, factory=_StandInConnection)

    def auto_gpkg_start() -> int:
        tables = connection.execute("SELECT table_name FROM gpkg_geometry_columns").fetchall()
        for (table,) in tables:
            connection.execute(f'CREATE TEMP VIEW "vgpkg_{table}" AS SELECT * FROM "{table}"')
        return len(tables)

    connection.create_function("load_extension", 1, lambda name: None)
    connection.create_function("AutoGPKGStart", 0, auto_gpkg_start)
    connection.create_function("AsGeoJSON", 1, _as_geojson)
    return connection


@pytest.fixture
def pygeoapi_sqlite_provider(gpkg, monkeypatch):
    """pygeoapi's SQLiteGPKGProvider on the same file.

    It needs SpatiaLite (mod_spatialite, and a Python whose sqlite3 can load extensions). Where
    that is missing, as on our Python build, its connection gets Python stand-ins for the three
    SpatiaLite calls it makes; everything else (SQL, paging, properties, id and pygeoapi's
    per-feature CRS transformation) is pygeoapi's own code.
    """
    import pygeoapi.provider.sqlite as pygeoapi_sqlite

    if not _spatialite_loads():
        stand_in = types.SimpleNamespace(**vars(sqlite3))
        stand_in.connect = _stand_in_connect
        monkeypatch.setattr(pygeoapi_sqlite, "sqlite3", stand_in)
    definition = {
        "type": "feature",
        "name": "SQLiteGPKG",
        "data": str(gpkg),
        "table": "buildings",
        "id_field": "id",
        "storage_crs": EPSG_25832,
        "crs": [CRS84, EPSG_25832, EPSG_4326],
    }
    return pygeoapi_sqlite.SQLiteGPKGProvider(definition), definition


@pytest.mark.parametrize("crs", [None, CRS84, EPSG_4326])
def test_page_equals_pygeoapi_sqlite_provider(provider, pygeoapi_sqlite_provider, crs):
    theirs_provider, definition = pygeoapi_sqlite_provider
    spec = create_crs_transform_spec(definition, crs) if crs else None
    ours = provider.query(offset=1, limit=7, crs_transform_spec=spec)
    theirs = theirs_provider.query(offset=1, limit=7, crs_transform_spec=spec)
    assert ids(ours) == ids(theirs) == ALL_IDS[1:8]
    assert ours["numberMatched"] == theirs["numberMatched"] == 26
    for mine, their in zip(ours["features"], theirs["features"], strict=True):
        their_properties = {k: v for k, v in their["properties"].items() if k != "fid"}
        # SQLite hands out BOOLEAN as 0/1; we publish booleans.
        assert mine["properties"] == their_properties
        if their["geometry"] is None or not their["geometry"]["coordinates"]:
            assert mine["geometry"] is None
        else:
            assert shape(mine["geometry"]).equals_exact(shape(their["geometry"]), 1e-9)


def test_property_filter_equals_pygeoapi_sqlite_provider(provider, pygeoapi_sqlite_provider):
    theirs_provider, _ = pygeoapi_sqlite_provider
    query = {"properties": [("function_name", "Garage")], "limit": 100}
    assert ids(provider.query(**query)) == ids(theirs_provider.query(**query))


# --- through pygeoapi's API -----------------------------------------------------------------------


def api_config(gpkg: Path) -> dict:
    return {
        "server": {
            "url": "http://localhost:5000",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": 1000},
            "map": {"url": "https://tile.example.org/{z}/{x}/{y}.png", "attribution": ""},
            "pretty_print": False,
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "t", "description": "d", "keywords": [], "url": "u"},
            "license": {"name": "MIT", "url": "u"},
            "provider": {"name": "p", "url": "u"},
            "contact": {"name": "c"},
        },
        "resources": {
            "buildings": {
                "type": "collection",
                "title": "Buildings",
                "description": "Buildings",
                "keywords": [],
                "extents": {"spatial": {"bbox": [9.9, 53.5, 10.0, 53.6], "crs": CRS84}},
                "providers": [provider_def(gpkg)],
            }
        },
    }


def api_get(api: API, function, query: str) -> tuple[int, dict]:
    request = APIRequest.from_flask(Request(create_environ(query_string=query)), ["en-US"])
    _, status, content = function(api, request, "buildings")
    return status, json.loads(content)


def test_api_bbox_in_crs84_is_transformed_to_storage_crs(gpkg):
    api = API(api_config(gpkg), {})
    to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84")
    west, south = to_crs84.transform(X0 - 1, Y0 - 1)
    east, north = to_crs84.transform(X0 + 22, Y0 + 1)
    status, body = api_get(api, get_collection_items, f"bbox={west},{south},{east},{north}&f=json")
    assert status == 200
    assert ids(body) == ["b01", "b02"]
    storage_bbox = f"{X0 - 1},{Y0 - 1},{X0 + 22},{Y0 + 1}"
    status, body = api_get(api, get_collection_items, f"bbox={storage_bbox}&bbox-crs={EPSG_25832}")
    assert status == 200
    assert ids(body) == ["b01", "b02"]


def test_api_property_filter_sortby_and_errors(gpkg):
    api = API(api_config(gpkg), {})
    status, body = api_get(api, get_collection_items, "storeys=drei&f=json")
    assert status == 400
    assert "property 'storeys' is of type integer" in body["description"]
    status, body = api_get(api, get_collection_items, "function_name=Garage&sortby=-height&f=json")
    assert status == 200
    assert ids(body)[:3] == ["g18", "g16", "g14"]


def test_api_queryables_list_geometry_and_fields(gpkg):
    api = API(api_config(gpkg), {})
    status, body = api_get(api, get_collection_queryables, "f=json")
    assert status == 200
    assert body["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
    assert body["properties"]["id"]["x-ogc-role"] == "id"
    assert body["properties"]["storeys"]["type"] == "integer"
    assert body["properties"]["built"]["format"] == "date"


# --- the file, connections ------------------------------------------------------------------------


def test_concurrent_queries_in_threads_agree(provider):
    expected = provider.query(limit=100, sortby=[{"property": "height", "order": "+"}])
    results: list = []

    def work() -> None:
        for _ in range(5):
            results.append(provider.query(limit=100, sortby=[{"property": "height", "order": "+"}]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20
    assert all(result == expected for result in results)


def test_replaced_file_is_read_anew(tmp_path):
    path = tmp_path / "district.gpkg"
    write_gpkg(path, FEATURES[:3])
    assert GeoPackageProvider(provider_def(path)).query()["numberMatched"] == 3
    replacement = tmp_path / "new.gpkg"
    write_gpkg(replacement, FEATURES[:5])
    os.replace(replacement, path)
    assert GeoPackageProvider(provider_def(path)).query()["numberMatched"] == 5


def test_file_is_opened_read_only(provider, gpkg):
    before = gpkg.stat().st_mtime_ns
    provider.query(bbox=[X0, Y0, X0 + 1, Y0 + 1])
    assert gpkg.stat().st_mtime_ns == before


# --- GeoPackage geometry blobs --------------------------------------------------------------------

POLYGON = shapely.from_wkt("POLYGON ((0 0, 4 0, 4 3, 0 0))")


def gpkg_blob(wkb: bytes, indicator: int = 0, big_endian: bool = False, flags: int = 0) -> bytes:
    order = ">" if big_endian else "<"
    envelope = [0.0, 4.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0][: (0, 4, 6, 6, 8)[indicator]]
    header_flags = (0 if big_endian else 1) | (indicator << 1) | flags
    return (
        b"GP"
        + bytes([0, header_flags])
        + struct.pack(f"{order}i", 25832)
        + struct.pack(f"{order}{len(envelope)}d", *envelope)
        + wkb
    )


@pytest.mark.parametrize("indicator", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("big_endian", [False, True])
def test_blob_envelope_and_byte_order_are_skipped(indicator, big_endian):
    wkb = shapely.to_wkb(POLYGON, byte_order=0 if big_endian else 1)
    decoded = geometries_from_blobs([gpkg_blob(wkb, indicator, big_endian), None])
    assert decoded[0].equals_exact(POLYGON, 0)
    assert decoded[1] is None


def test_blob_empty_flag_gives_none():
    wkb = shapely.to_wkb(shapely.from_wkt("POLYGON EMPTY"))
    assert geometries_from_blobs([gpkg_blob(wkb, flags=0x10)])[0] is None


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"XX\x00\x01\x00\x00\x00\x00", "not a GeoPackage geometry blob"),
        (gpkg_blob(b"", flags=0x0A), "invalid GeoPackage envelope indicator 5"),
        (gpkg_blob(b"", flags=0x20), "extended GeoPackage geometry blobs"),
    ],
)
def test_bad_blobs_are_refused(blob, message):
    with pytest.raises(GeoPackageBlobError, match=message):
        geometries_from_blobs([blob])


@pytest.mark.parametrize("indicator", [0, 1])
def test_blob_intersects_box_is_exact(indicator):
    blob = gpkg_blob(shapely.to_wkb(POLYGON), indicator)
    assert blob_intersects_box(blob, 3, 0.5, 5, 1) == 1  # below the hypotenuse
    assert blob_intersects_box(blob, 0, 2, 1, 3) == 0  # inside the envelope, outside the shape
    assert blob_intersects_box(blob, -1, -1, 5, 5) == 1  # contains the whole envelope
    assert blob_intersects_box(blob, 5, 5, 6, 6) == 0
    assert blob_intersects_box(None, -1, -1, 5, 5) == 0


# --- GeoJSON encoding of geometry arrays ----------------------------------------------------------

MIXED_WKT = [
    "POINT (1 2)",
    "POINT Z (1 2 3)",
    "MULTIPOINT ((1 2), (3 4))",
    "LINESTRING (0 0, 1 1)",
    "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3, 4 4))",
    "POLYGON ((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1))",
    "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5), (5.1 5.1, 5.2 5.1, 5.2 5.2, 5.1 5.1)))",  # noqa: E501
    "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))",
    "POLYGON Z ((0 0 1, 1 0 2, 1 1 3, 0 0 1))",
    "MULTIPOLYGON Z (((0 0 1, 1 0 1, 1 1 1, 0 0 1)))",
    "POINT (9.123456789012345 53.123456789012345)",
]


def test_geojson_of_mixed_geometry_arrays_equals_shapely_mapping():
    geometries = np.array([*shapely.from_wkt(MIXED_WKT), None, shapely.Polygon()], dtype=object)
    encoded = to_geojson_geometries(geometries)
    expected = [json.loads(json.dumps(mapping(g))) for g in geometries[: len(MIXED_WKT)]]
    assert encoded == [*expected, None, None]
    assert encoded[-3]["coordinates"] == [9.123456789012345, 53.123456789012345]  # not rounded
