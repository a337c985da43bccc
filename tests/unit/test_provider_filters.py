"""CQL2 filters translated to SQL, on the hand-made places table in both stores, exact answers.

Every test runs on the GeoPackage store and on the PostGIS store (``store_places_location``);
the expected ids are the same for both. The places are described in ``tests/conftest.py``.
"""

from __future__ import annotations

import pyproj
import pytest
from feature_store_data import EPSG_25832_URI, STORE_X0, STORE_Y0, store_provider_def
from pygeoapi.provider.base import ProviderInvalidQueryError

from cut_processes.providers import FeatureProvider
from cut_processes.providers.cql2 import parse_text
from cut_processes.providers.dialects import like_tokens

ALL = [f"p{i:02d}" for i in range(1, 13)]


@pytest.fixture
def provider(store_places_location) -> FeatureProvider:
    return FeatureProvider(store_provider_def(store_places_location))


def ids(provider: FeatureProvider, filterq, **query) -> list[str]:
    found = provider.query(filterq=filterq, limit=100, **query)
    assert found["numberMatched"] == found["numberReturned"]
    return [f["id"] for f in found["features"]]


def square_wkt(x: float, y: float, size: float) -> str:
    ring = [(x, y), (x + size, y), (x + size, y + size), (x, y + size), (x, y)]
    points = ", ".join(f"{STORE_X0 + a} {STORE_Y0 + b}" for a, b in ring)
    return f"POLYGON(({points}))"


def point_wkt(x: float, y: float) -> str:
    return f"POINT({STORE_X0 + x} {STORE_Y0 + y})"


# --- comparisons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("name = 'Bürogebäude'", ["p02"]),
        ("name = 'O''Brien'", ["p12"]),
        ("name <> 'Wohnhaus'", [i for i in ALL if i not in ("p01", "p03")]),
        ("storeys = 2", ["p06", "p09", "p10"]),
        ("storeys = '2'", ["p06", "p09", "p10"]),  # cast to the column type
        ("storeys <> 1", ["p01", "p02", "p06", "p07", "p09", "p10", "p12"]),  # nulls never match
        ("storeys < 2", ["p04", "p05", "p11"]),
        ("storeys <= 2", ["p04", "p05", "p06", "p09", "p10", "p11"]),
        ("storeys > 4", ["p02", "p12"]),
        ("storeys >= 4", ["p02", "p07", "p12"]),
        ("height > 12", ["p02", "p12"]),
        ("height = 9.5", ["p01"]),
        ("2 < storeys", ["p01", "p02", "p07", "p12"]),  # literal on the left
        ("flat = TRUE", ["p01", "p04", "p07", "p10", "p11"]),
        ("flat = false", ["p02", "p05", "p06", "p09", "p12"]),
        ("id = 'p07'", ["p07"]),
        ("name > 'Wohnhaus'", ["p06", "p08", "p09"]),  # code points: Ä, Ü, w after W
        ("name < 'B'", ["p07"]),  # '1' < 'B'
    ],
)
def test_comparisons(provider, cql, expected):
    assert ids(provider, cql) == expected


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("storeys IS NULL", ["p03", "p08"]),
        ("storeys IS NOT NULL", [i for i in ALL if i not in ("p03", "p08")]),
        ("NOT storeys IS NULL", [i for i in ALL if i not in ("p03", "p08")]),
        ("tags IS NOT NULL", ["p01", "p06"]),
        ("geometry IS NULL", ["p05"]),
        ("built IS NULL AND surveyed IS NULL", ["p03", "p08"]),
        # three-valued logic: NOT of unknown stays unknown
        ("NOT (storeys > 2)", ["p04", "p05", "p06", "p09", "p10", "p11"]),
        ("storeys = 1 OR storeys = 6 AND flat = FALSE", ["p04", "p05", "p11", "p12"]),
        ("(storeys = 1 OR storeys = 6) AND flat = FALSE", ["p05", "p12"]),
        ("storeys = 2 AND NOT flat = TRUE", ["p06", "p09"]),
    ],
)
def test_nulls_and_logic(provider, cql, expected):
    assert ids(provider, cql) == expected


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("name LIKE 'Wohn%'", ["p01", "p03"]),  # case-sensitive: not 'wohnhaus'
        ("name LIKE '%haus'", ["p01", "p03", "p06", "p09"]),
        ("name LIKE '_rztehaus'", ["p06"]),  # _ is one character, also 'Ä'
        ("name LIKE 'Über_gang'", ["p08"]),
        ("name LIKE 'Über\\_gang'", ["p08"]),  # escaped _: itself
        ("name LIKE 'Übe\\_gang'", []),
        ("name LIKE '100\\% %'", ["p07"]),  # escaped %
        ("name LIKE '100%'", ["p07"]),
        ("name LIKE 'O''%'", ["p12"]),
        ("name LIKE '*'", []),  # GLOB's wildcards are plain characters in CQL2
        ("name NOT LIKE '%a%'", ["p02", "p05", "p07", "p12"]),  # 'ä' is not 'a'
        ("name LIKE 'Garage'", ["p04", "p11"]),
        ("name IN ('Garage', 'Schuppen')", ["p04", "p05", "p11"]),
        ("name NOT IN ('Garage', 'Schuppen', 'Wohnhaus')",
         ["p02", "p06", "p07", "p08", "p09", "p10", "p12"]),
        ("storeys IN (1, 6)", ["p04", "p05", "p11", "p12"]),
        ("storeys NOT IN (1, 2, 3)", ["p02", "p07", "p12"]),
        ("height BETWEEN 3 AND 8", ["p04", "p06", "p08", "p09", "p10"]),
        ("height NOT BETWEEN 3 AND 8", ["p01", "p02", "p05", "p07", "p11", "p12"]),
        ("storeys BETWEEN 2 AND 3", ["p01", "p06", "p09", "p10"]),
    ],
)  # fmt: skip
def test_like_in_between(provider, cql, expected):
    assert ids(provider, cql) == expected


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("CASEI(name) = casei('WOHNHAUS')", ["p01", "p03", "p09"]),
        ("CASEI(name) = 'ärztehaus'", ["p06"]),
        ("CASEI(name) LIKE CASEI('ÄRZTE%')", ["p06"]),
        ("CASEI(name) LIKE 'über%'", ["p08"]),
        ("ACCENTI(name) = 'Cafe Muller'", ["p10"]),
        ("ACCENTI(name) = ACCENTI('Café Müller')", ["p10"]),
        ("ACCENTI(CASEI(name)) LIKE 'arzte%'", ["p06"]),
        ("CASEI(ACCENTI(name)) = 'uber_gang'", ["p08"]),
        ("ACCENTI(name) LIKE '%Oko'", ["p07"]),
    ],
)
def test_case_and_accent_insensitive(provider, cql, expected):
    assert ids(provider, cql) == expected


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("height / storeys > 3.2", ["p02", "p09", "p10", "p12"]),  # 3.45, 3.5, 4, 3.25
        ("storeys * 3 > height", ["p05", "p11"]),
        ("storeys + 1 = 3", ["p06", "p09", "p10"]),
        ("height - storeys * 3 < 0", ["p05", "p11"]),
        ("storeys * 3 = height + 0.5", ["p05"]),
        ("height / (storeys - 1) > 4", ["p01", "p02", "p06", "p09", "p10"]),  # / 0: NULL
        ("storeys > height", []),  # property-property
        ("height > storeys", [i for i in ALL if i not in ("p03", "p08")]),
    ],
)
def test_arithmetic_and_property_property(provider, cql, expected):
    assert ids(provider, cql) == expected


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("built > DATE('2005-01-01')", ["p02", "p04", "p05", "p06", "p10"]),
        ("built = '2012-02-29'", ["p06"]),
        ("surveyed < TIMESTAMP('2024-03-02T09:00:00+01:00')", ["p01", "p09", "p12"]),
        ("surveyed = TIMESTAMP('2024-03-03T10:00:00Z')", ["p04"]),  # stored as 12:00+02:00
        ("surveyed >= DATE('2024-03-04')", ["p06", "p10"]),
        ("T_BEFORE(surveyed, TIMESTAMP('2024-03-01T10:00:00Z'))", ["p09", "p12"]),
        ("T_AFTER(built, DATE('2011-06-15'))", ["p06", "p10"]),
        ("T_EQUALS(built, DATE('2011-06-15'))", ["p05"]),
        ("T_DURING(surveyed, INTERVAL('2024-03-02T00:00:00Z', '2024-03-03T12:00:00Z'))",
         ["p02", "p04", "p11"]),
        ("T_INTERSECTS(surveyed, INTERVAL('2024-03-04', '..'))", ["p06", "p10"]),
        ("T_DISJOINT(built, INTERVAL('1980-01-01', '2010-12-31'))", ["p05", "p06", "p07", "p10"]),
        ("T_AFTER(built, INTERVAL('..', '2011-06-15'))", ["p06", "p10"]),
        ("T_BEFORE(built, INTERVAL('..', '2011-06-15'))", []),
    ],
)  # fmt: skip
def test_dates_and_times(provider, cql, expected):
    assert ids(provider, cql) == expected


# --- spatial -----------------------------------------------------------------------------------

P01 = square_wkt(0, 0, 10)


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        (f"S_INTERSECTS(geometry, {P01})", ["p01", "p06", "p08", "p09", "p10", "p12"]),
        (f"S_INTERSECTS({P01}, geometry)", ["p01", "p06", "p08", "p09", "p10", "p12"]),
        (f"S_WITHIN(geometry, {P01})", ["p01", "p06", "p09"]),
        (f"S_CONTAINS({P01}, geometry)", ["p01", "p06", "p09"]),  # mirrored: geometry within
        (f"S_CONTAINS(geometry, {P01})", ["p01", "p09"]),
        (f"S_CONTAINS(geometry, {point_wkt(5, 5)})", ["p01", "p06", "p08", "p09"]),
        (f"S_TOUCHES(geometry, {P01})", ["p10"]),
        (f"S_CROSSES(geometry, {P01})", ["p08"]),
        (f"S_OVERLAPS(geometry, {P01})", ["p12"]),
        (f"S_EQUALS(geometry, {P01})", ["p01", "p09"]),
        (f"S_DISJOINT(geometry, {P01})", ["p02", "p03", "p04", "p07", "p11"]),
        (f"NOT S_INTERSECTS(geometry, {P01})", ["p02", "p03", "p04", "p07", "p11"]),
        (f"S_DWITHIN(geometry, {point_wkt(0, 0)}, 10)", ["p01", "p06", "p08", "p09", "p10",
                                                          "p12"]),
        (f"S_DWITHIN(geometry, {point_wkt(0, 0)}, 9.99)", ["p01", "p06", "p08", "p09", "p12"]),
        (f"S_DWITHIN(geometry, {point_wkt(120, 20)}, 14.2)", ["p04"]),  # the hypotenuse: 14.14
        (f"S_DWITHIN(geometry, {point_wkt(120, 20)}, 14.1)", []),
        (f"S_INTERSECTS(geometry, LINESTRING({STORE_X0 - 1} {STORE_Y0 + 20}, "
         f"{STORE_X0 + 61} {STORE_Y0 + 20}))", ["p07"]),
        (f"S_INTERSECTS(geometry, BBOX({STORE_X0 + 115}, {STORE_Y0 + 15}, {STORE_X0 + 130}, "
         f"{STORE_Y0 + 30}))", []),  # the triangle's envelope, beside its hypotenuse
        (f"S_INTERSECTS(geometry, MULTIPOINT(({STORE_X0 + 25} {STORE_Y0 + 5}), "
         f"({STORE_X0 + 1005} {STORE_Y0 + 1005})))", ["p02", "p11"]),
        (f"S_INTERSECTS(geometry, GEOMETRYCOLLECTION({point_wkt(45, 5)}, {point_wkt(30, 20)}))",
         ["p03", "p07"]),
        (f"S_INTERSECTS(geometry, {P01}) AND storeys = 2", ["p06", "p09", "p10"]),
        (f"S_WITHIN(geometry, {P01}) OR name = 'Garage'", ["p01", "p04", "p06", "p09", "p11"]),
    ],
)  # fmt: skip
def test_spatial_functions_in_storage_crs(provider, cql, expected):
    tree = parse_text(cql)
    # The literals are in EPSG:25832: tag them, as pygeoapi does after applying filter-crs.
    _tag_geometries(tree, EPSG_25832_URI)
    assert ids(provider, tree) == expected


def _tag_geometries(node, crs_uri: str) -> None:
    """Tag the geometry literals of an AST with a CRS, as pygeoapi does for filter-crs."""
    from cut_processes.providers.cql2 import walk

    for value in walk(node):
        geometry = getattr(value, "geometry", None)
        if isinstance(geometry, dict) and "type" in geometry:
            geometry["crs"] = {"properties": {"name": crs_uri}}


def test_filter_geometries_default_to_crs84(provider):
    """Untagged literals are CRS84 (lon/lat) and are transformed to EPSG:25832."""
    to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    west, south = to_crs84.transform(STORE_X0 + 1, STORE_Y0 + 1)
    east, north = to_crs84.transform(STORE_X0 + 9, STORE_Y0 + 9)
    cql = f"S_INTERSECTS(geometry, BBOX({west}, {south}, {east}, {north}))"
    assert ids(provider, cql) == ["p01", "p06", "p08", "p09", "p12"]
    lon, lat = to_crs84.transform(STORE_X0 + 45, STORE_Y0 + 5)
    assert ids(provider, f"S_INTERSECTS(geometry, POINT({lon} {lat}))") == ["p03"]


def test_filter_geometries_in_epsg_4326_are_latitude_first(provider):
    to_4326 = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4326")  # lat, lon
    lat, lon = to_4326.transform(STORE_X0 + 45, STORE_Y0 + 5)
    cql = f"S_INTERSECTS(geometry, SRID=4326;POINT({lat} {lon}))"
    assert ids(provider, cql) == ["p03"]


def test_a_filter_combines_with_bbox_and_property_filters(provider):
    box = [STORE_X0 - 1, STORE_Y0 - 1, STORE_X0 + 11, STORE_Y0 + 11]
    assert ids(provider, "storeys >= 2", bbox=box) == ["p01", "p06", "p09", "p10", "p12"]
    found = ids(provider, "storeys >= 2", bbox=box, properties=[("flat", "true")])
    assert found == ["p01", "p10"]


def test_cql2_json_dicts_and_text_give_the_same_answer(provider):
    json_filter = {
        "op": "and",
        "args": [
            {"op": "between", "args": [{"property": "height"}, 3, 8]},
            {"op": "like", "args": [{"op": "casei", "args": [{"property": "name"}]}, "%haus"]},
        ],
    }
    text = "height BETWEEN 3 AND 8 AND CASEI(name) LIKE '%haus'"
    assert ids(provider, json_filter) == ids(provider, text) == ["p06", "p09"]


def test_paging_and_sorting_with_a_filter(provider):
    sort = [{"property": "height", "order": "-"}]
    first = provider.query(filterq="storeys >= 2", sortby=sort, limit=3)
    second = provider.query(filterq="storeys >= 2", sortby=sort, limit=3, offset=3)
    assert first["numberMatched"] == second["numberMatched"] == 7
    assert [f["id"] for f in first["features"] + second["features"]] == [
        "p12", "p02", "p07", "p01", "p10", "p09",
    ]  # fmt: skip


# --- refused filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cql", "message"),
    [
        ("colour = 'red'", "unknown property 'colour' in filter"),
        ("storeys = 'drei'", "property 'storeys' is of type integer; 'drei' is not"),
        ("built = DATE('2020-01-01') AND flat = 'maybe'", "property 'flat' is of type boolean"),
        ("name = 5", "property 'name' is of type string; 5 is not"),
        ("name > storeys", "cannot compare name (string) with storeys (integer)"),
        ("storeys LIKE '1%'", "LIKE needs a string property"),
        ("name LIKE storeys", "the pattern of LIKE must be a string literal"),
        ("tags = 'x'", "tags holds JSON values"),
        ("S_INTERSECTS(name, POINT(1 2))", "S_INTERSECTS needs the geometry"),
        ("S_INTERSECTS(geometry, 'POINT(1 2)')", "compares the geometry with a geometry literal"),
        ("S_DWITHIN(geometry, POINT(1 2), -1)", "distance must be >= 0"),
        ("geometry = 3", "the geometry cannot be used with ="),
        ("UPPER(name) = 'X'", "unknown function 'upper'"),
        ("CASEI(storeys) = 'x'", "CASEI() needs a string"),
        ("T_BEFORE(name, DATE('2020-01-01'))", "T_BEFORE needs a date or date-time property"),
        ("T_MEETS(built, DATE('2020-01-01'))", "T_MEETS of two instants is not supported"),
        ("built = TIMESTAMP('2020-01-01T00:00:00Z')", "property 'built' is of type date"),
        ("S_INTERSECTS(geometry, SRID=999999;POINT(1 2))", "is not known"),
    ],
)
def test_refused_filters_name_the_problem(provider, cql, message):
    with pytest.raises(ProviderInvalidQueryError, match=_escaped(message)) as err:
        provider.query(filterq=cql)
    assert err.value.http_status_code == 400


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_properties_not_published_cannot_be_filtered(store_places_location):
    provider = FeatureProvider(
        store_provider_def(store_places_location, properties=["name", "storeys"])
    )
    assert ids(provider, "storeys = 1") == ["p04", "p05", "p11"]
    with pytest.raises(ProviderInvalidQueryError, match="unknown property 'height'"):
        provider.query(filterq="height > 1")


# --- LIKE patterns -----------------------------------------------------------------------------


def test_like_tokens():
    any_, one = like_tokens("%")[0], like_tokens("_")[0]
    assert like_tokens("a%b_c") == ["a", any_, "b", one, "c"]
    assert like_tokens("\\%\\_\\\\x\\") == ["%", "_", "\\", "x", "\\"]
