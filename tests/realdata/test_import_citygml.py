"""CityGML import on Hamburg's LoD2 excerpts (../shared/data/buildings)."""

from __future__ import annotations

import pytest
from shapely.geometry import shape

from cut_processes.io.citygml import read_citygml

pytestmark = pytest.mark.realdata

# Read by hand from the files: ground = z of the GroundSurface, roof z from the RoofSurfaces.
KNOWN = {
    # excerpt a (Neuwerk, DHHN92): gabled, ground 1.888, roof 3.678 .. 5.614
    "DEHH_acc61dee-77b1-4544-86a1-e7b6eb33b12d": dict(
        function="31001_2520", roof_type="3100", measured_height=3.726, storeys=1,
        eaves_height=1.79, ridge_height=3.726, footprint_area=13.57,
    ),
    # excerpt a: roof type 5000, ground 2.066, roof 7.862 .. 11.034
    "DEHH_60cffe13-d175-44e0-bb7f-7f06a1332e35": dict(
        function="31001_2726", roof_type="5000", measured_height=8.968, storeys=1,
        eaves_height=5.796, ridge_height=8.968, footprint_area=251.42,
    ),
    # excerpt b (DHHN2016): flat roof at 18.031 on ground 9.031
    "DEHHALKA3kW000EP": dict(
        function="31001_2140", roof_type="1000", measured_height=9.0, storeys=1,
        eaves_height=9.0, ridge_height=9.0, address="Escheburger Weg 10, 21039 Hamburg",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def buildings(io_shared_data):
    paths = sorted((io_shared_data / "buildings").glob("hamburg_lod2_excerpt_*.gml"))
    assert len(paths) == 2
    return read_citygml(paths)


def test_every_building_is_read_with_a_valid_footprint(buildings):
    assert len(buildings.features) == 4 and buildings.rejected == []
    for feat in buildings.features:
        geom = shape(feat["geometry"])
        assert geom.is_valid and geom.geom_type == "MultiPolygon" and geom.area > 5
        p = feat["properties"]
        assert p["footprint_area"] == pytest.approx(geom.area, abs=0.01)
        assert p["storeys"] >= 1 and p["measured_height"] > 0
        assert 0 < p["eaves_height"] <= p["ridge_height"]
        # Hamburg's measuredHeight is the roof's highest point above the ground surface.
        assert p["ridge_height"] == pytest.approx(p["measured_height"], abs=0.01)
        assert "Freie und Hansestadt Hamburg" in p["source"]


def test_known_buildings_have_the_values_read_by_hand(buildings):
    by_id = {f["properties"]["id"]: f["properties"] for f in buildings.features}
    for gml_id, expected in KNOWN.items():
        got = by_id[gml_id]
        for key, value in expected.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=0.01), (gml_id, key)
            else:
                assert got[key] == value, (gml_id, key)


def test_footprints_are_where_the_tiles_say(buildings):
    # Tile names give the 1 km square: LoD2_466_5974 (Neuwerk) and LoD2_32_587_5922.
    squares = {
        (int(shape(f["geometry"]).centroid.x // 1000), int(shape(f["geometry"]).centroid.y // 1000))
        for f in buildings.features
    }
    assert squares == {(466, 5974), (587, 5922)}
