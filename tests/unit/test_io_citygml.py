"""CityGML and CityJSON LoD2 import on small hand-made buildings with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import shape

from cut_processes.io.citygml import read_citygml
from cut_processes.io.cityjson import read_cityjson
from cut_processes.io.records import UnreadableFileError

X0, Y0 = 560000.0, 5930000.0
NS = {
    "1.0": {
        "core": "http://www.opengis.net/citygml/1.0",
        "bldg": "http://www.opengis.net/citygml/building/1.0",
        "gml": "http://www.opengis.net/gml",
    },
    "2.0": {
        "core": "http://www.opengis.net/citygml/2.0",
        "bldg": "http://www.opengis.net/citygml/building/2.0",
        "gml": "http://www.opengis.net/gml",
    },
}


def ring(points, z=None, pos_list=True):
    """A closed gml:LinearRing from (x, y, z) tuples relative to X0, Y0."""
    pts = [(X0 + p[0], Y0 + p[1], p[2] if len(p) == 3 else z) for p in points]
    pts.append(pts[0])
    if pos_list:
        coords = " ".join(f"{x} {y} {z}" for x, y, z in pts)
        return (
            f'<gml:LinearRing><gml:posList srsDimension="3">{coords}</gml:posList></gml:LinearRing>'
        )
    return (
        "<gml:LinearRing>"
        + "".join(f"<gml:pos>{x} {y} {z}</gml:pos>" for x, y, z in pts)
        + "</gml:LinearRing>"
    )


def polygon(pid, points, z=None, pos_list=True):
    return (
        f'<gml:Polygon gml:id="{pid}"><gml:exterior>{ring(points, z, pos_list)}'
        "</gml:exterior></gml:Polygon>"
    )


def surface(kind, *polygons):
    members = "".join(f"<gml:surfaceMember>{p}</gml:surfaceMember>" for p in polygons)
    return (
        f"<bldg:boundedBy><bldg:{kind}><bldg:lod2MultiSurface><gml:MultiSurface>{members}"
        f"</gml:MultiSurface></bldg:lod2MultiSurface></bldg:{kind}></bldg:boundedBy>"
    )


def gabled_building(gid="B1", measured="9.0"):
    """10 x 10 m, ground at z=5, eaves at z=11, ridge (along y at x=5) at z=14."""
    ground = polygon(f"{gid}_g", [(0, 0), (10, 0), (10, 10), (0, 10)], z=5)
    roof_w = polygon(f"{gid}_r1", [(0, 0, 11), (0, 10, 11), (5, 10, 14), (5, 0, 14)])
    roof_e = polygon(
        f"{gid}_r2", [(10, 0, 11), (5, 0, 14), (5, 10, 14), (10, 10, 11)], pos_list=False
    )
    wall = polygon(f"{gid}_w1", [(0, 0, 5), (10, 0, 5), (10, 0, 11), (0, 0, 11)])
    refs = "".join(f'<gml:surfaceMember xlink:href="#{gid}_{s}"/>' for s in ("g", "r1", "r2", "w1"))
    return f"""
    <bldg:Building gml:id="{gid}">
      <bldg:function>31001_1000</bldg:function>
      <bldg:roofType>3100</bldg:roofType>
      <bldg:measuredHeight uom="urn:adv:uom:m">{measured}</bldg:measuredHeight>
      <bldg:storeysAboveGround>2</bldg:storeysAboveGround>
      <bldg:lod2Solid><gml:Solid><gml:exterior><gml:CompositeSurface>{refs}
      </gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>
      {surface("WallSurface", wall)}{surface("RoofSurface", roof_w)}{surface("RoofSurface", roof_e)}
      {surface("GroundSurface", ground)}
      <bldg:address><core:Address><core:xalAddress><xAL:AddressDetails><xAL:Country>
        <xAL:Locality><xAL:LocalityName>Hamburg</xAL:LocalityName>
        <xAL:Thoroughfare><xAL:ThoroughfareNumber>7</xAL:ThoroughfareNumber>
        <xAL:ThoroughfareName>Beispielweg</xAL:ThoroughfareName></xAL:Thoroughfare>
        <xAL:PostalCode><xAL:PostalCodeNumber>22765</xAL:PostalCodeNumber></xAL:PostalCode>
      </xAL:Locality></xAL:Country></xAL:AddressDetails></core:xalAddress></core:Address>
      </bldg:address>
    </bldg:Building>"""


def box_polygons(prefix, x0, x1, y0, y1, z0, z1):
    """The six faces of a box (inline solid polygons)."""
    return [
        polygon(f"{prefix}_b", [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], z=z0),
        polygon(f"{prefix}_t", [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], z=z1),
        polygon(f"{prefix}_s", [(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)]),
        polygon(f"{prefix}_n", [(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)]),
        polygon(f"{prefix}_w", [(x0, y0, z0), (x0, y1, z0), (x0, y1, z1), (x0, y0, z1)]),
        polygon(f"{prefix}_e", [(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)]),
    ]


def building_with_parts(gid="B2"):
    """Part A: 10 x 10 m with a GroundSurface at z=3 and a flat roof at z=9 (6 m).
    Part B: 5 x 10 m east of A, only a solid (no GroundSurface) from z=3 to z=15, with a flat
    RoofSurface at z=15 (12 m): the tallest part."""
    part_a = f"""
      <bldg:BuildingPart gml:id="{gid}_A">
        <bldg:roofType>1000</bldg:roofType>
        <bldg:measuredHeight>6</bldg:measuredHeight>
        <bldg:storeysAboveGround>2</bldg:storeysAboveGround>
        {surface("GroundSurface", polygon(f"{gid}_A_g", [(0, 0), (10, 0), (10, 10), (0, 10)], z=3))}
        {surface("RoofSurface", polygon(f"{gid}_A_r", [(0, 0), (10, 0), (10, 10), (0, 10)], z=9))}
      </bldg:BuildingPart>"""
    solid = "".join(
        f"<gml:surfaceMember>{p}</gml:surfaceMember>"
        for p in box_polygons(f"{gid}_B", 10, 15, 0, 10, 3, 15)
    )
    part_b = f"""
      <bldg:BuildingPart gml:id="{gid}_B">
        <bldg:roofType>1000</bldg:roofType>
        <bldg:measuredHeight>12</bldg:measuredHeight>
        <bldg:storeysAboveGround>4</bldg:storeysAboveGround>
        <bldg:lod2Solid><gml:Solid><gml:exterior><gml:CompositeSurface>{solid}
        </gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>
        {surface("RoofSurface", polygon(f"{gid}_B_r", [(10, 0), (15, 0), (15, 10), (10, 10)], 15))}
      </bldg:BuildingPart>"""
    return f"""
    <bldg:Building gml:id="{gid}">
      <bldg:function>31001_2020</bldg:function>
      <bldg:consistsOfBuildingPart>{part_a}</bldg:consistsOfBuildingPart>
      <bldg:consistsOfBuildingPart>{part_b}</bldg:consistsOfBuildingPart>
    </bldg:Building>"""


def city_model(version, *buildings, srs="EPSG:25832"):
    ns = NS[version]
    members = "".join(f"<core:cityObjectMember>{b}</core:cityObjectMember>" for b in buildings)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<core:CityModel xmlns:core="{ns["core"]}" xmlns:bldg="{ns["bldg"]}" xmlns:gml="{ns["gml"]}"
  xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xAL="urn:oasis:names:tc:ciq:xsdschema:xAL:2.0">
  <gml:boundedBy><gml:Envelope srsName="{srs}" srsDimension="3">
    <gml:lowerCorner>{X0} {Y0} 0</gml:lowerCorner>
    <gml:upperCorner>{X0 + 20} {Y0 + 20} 20</gml:upperCorner>
  </gml:Envelope></gml:boundedBy>
  {members}
</core:CityModel>"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_gabled_building_heights_footprint_and_attributes(tmp_path, version):
    path = write(tmp_path, "tile.gml", city_model(version, gabled_building()))
    result = read_citygml([path])
    assert result.rejected == []
    (feat,) = result.features
    p = feat["properties"]
    assert p["id"] == p["gml_id"] == "B1"
    assert (p["function"], p["roof_type"], p["storeys"]) == ("31001_1000", "3100", 2)
    assert p["measured_height"] == 9.0
    assert p["eaves_height"] == pytest.approx(6.0)  # lowest roof edge 11 - ground 5
    assert p["ridge_height"] == pytest.approx(9.0)  # highest roof point 14 - ground 5
    assert p["footprint_area"] == pytest.approx(100.0)
    assert p["address"] == "Beispielweg 7, 22765 Hamburg"
    assert p["source"] == "tile.gml"
    geom = shape(feat["geometry"])
    assert geom.geom_type == "MultiPolygon" and geom.is_valid
    assert geom.bounds == pytest.approx((X0, Y0, X0 + 10, Y0 + 10))
    assert result.srid == 25832 and result.geometry_type == "MultiPolygon"


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_building_parts_are_merged_with_heights_of_the_tallest(tmp_path, version):
    path = write(tmp_path, "parts.gml", city_model(version, building_with_parts()))
    (feat,) = read_citygml([path]).features
    p = feat["properties"]
    assert p["building_parts"] == 2
    assert p["function"] == "31001_2020"  # the building's own
    assert p["measured_height"] == 12.0 and p["storeys"] == 4  # the tallest part's
    assert p["roof_type"] == "1000"
    assert p["eaves_height"] == pytest.approx(12.0)
    assert p["ridge_height"] == pytest.approx(12.0)
    # Part A from its GroundSurface, part B projected from its solid: one 15 x 10 m block.
    assert p["footprint_area"] == pytest.approx(150.0)
    assert shape(feat["geometry"]).bounds == pytest.approx((X0, Y0, X0 + 15, Y0 + 10))


def test_bad_buildings_are_rejected_with_reasons_and_the_rest_kept(tmp_path):
    broken_roof = gabled_building("B3", measured="hoch")
    empty = '<bldg:Building gml:id="B4"><bldg:function>31001_1000</bldg:function></bldg:Building>'
    path = write(tmp_path, "mixed.gml", city_model("2.0", gabled_building(), broken_roof, empty))
    result = read_citygml([path])
    assert [f["properties"]["id"] for f in result.features] == ["B1"]
    reasons = dict(result.rejected)
    assert "measuredHeight" in reasons["mixed.gml building B3"]
    assert "'hoch'" in reasons["mixed.gml building B3"]
    assert "no geometry" in reasons["mixed.gml building B4"]


def test_the_same_building_in_two_tiles_is_kept_once(tmp_path):
    a = write(tmp_path, "a.gml", city_model("2.0", gabled_building()))
    b = write(tmp_path, "b.gml", city_model("2.0", gabled_building()))
    result = read_citygml([a, b])
    assert len(result.features) == 1
    assert result.rejected == [("CityGML id B1", "duplicate id; the first record with it is kept")]


def test_adv_crs_names_and_reprojection(tmp_path):
    # Saxony publishes UTM zone 33: the footprint is moved to EPSG:25832 and keeps its area.
    text = city_model("2.0", gabled_building(), srs="urn:adv:crs:ETRS89_UTM33*DE_DHHN2016_NH")
    path = write(tmp_path, "sn.gml", text.replace("5600", "4000"))  # zone-33 eastings 4000xx
    (feat,) = read_citygml([path]).features
    assert feat["properties"]["footprint_area"] == pytest.approx(100.0, rel=0.01)
    assert shape(feat["geometry"]).bounds[0] > 790000  # zone 33 -> zone 32 eastings grow


def test_files_that_cannot_be_read_name_the_file(tmp_path):
    broken = write(tmp_path, "broken.gml", "<core:CityModel><unclosed>")
    with pytest.raises(UnreadableFileError, match=r"broken\.gml"):
        read_citygml([broken])
    no_crs = write(tmp_path, "nocrs.gml", city_model("2.0", gabled_building()).replace(
        'srsName="EPSG:25832"', ""))  # fmt: skip
    with pytest.raises(UnreadableFileError, match=r"nocrs\.gml: names no CRS"):
        read_citygml([no_crs])
    assert len(read_citygml([no_crs], source_srid=25832).features) == 1
    not_citygml = write(tmp_path, "other.xml", "<root><child/></root>")
    with pytest.raises(UnreadableFileError, match="holds no bldg:Building"):
        read_citygml([not_citygml])


# --- CityJSON ----------------------------------------------------------------------------


def cityjson_document(version="2.0"):
    """The gabled building of the CityGML tests, and one with two parts, as CityJSON."""
    scale, translate = [0.001, 0.001, 0.001], [X0, Y0, 0.0]
    verts = [
        (0, 0, 5), (10, 0, 5), (10, 10, 5), (0, 10, 5),  # 0-3 ground
        (0, 0, 11), (10, 0, 11), (10, 10, 11), (0, 10, 11),  # 4-7 eaves
        (5, 0, 14), (5, 10, 14),  # 8-9 ridge
    ]  # fmt: skip
    shell = [
        [[0, 3, 2, 1]],  # ground
        [[4, 7, 9, 8]],  # roof west
        [[5, 8, 9, 6]],  # roof east
        [[0, 1, 5, 8, 4]],  # walls
        [[1, 2, 6, 5]],
        [[2, 3, 7, 9, 6]],
        [[3, 0, 4, 7]],
    ]
    values = [[0, 1, 1, 2, 2, 2, 2]]
    part_verts = [(x, y, z) for z in (3, 15) for x, y in ((20, 0), (25, 0), (25, 10), (20, 10))]
    offset = len(verts)
    part_shell = [
        [[offset + i for i in (0, 3, 2, 1)]],
        [[offset + i for i in (4, 5, 6, 7)]],
        [[offset + i for i in (0, 1, 5, 4)]],
        [[offset + i for i in (1, 2, 6, 5)]],
        [[offset + i for i in (2, 3, 7, 6)]],
        [[offset + i for i in (3, 0, 4, 7)]],
    ]
    all_verts = [
        [round(x / scale[0]), round(y / scale[1]), round(z / scale[2])]
        for x, y, z in verts + part_verts
    ]
    semantics = {
        "surfaces": [{"type": "GroundSurface"}, {"type": "RoofSurface"}, {"type": "WallSurface"}]
    }
    return {
        "type": "CityJSON",
        "version": version,
        "transform": {"scale": scale, "translate": translate},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/25832"},
        "CityObjects": {
            "B1": {
                "type": "Building",
                "attributes": {"measuredHeight": 9.0, "storeysAboveGround": 2, "roofType": "3100"},
                "geometry": [
                    {"type": "Solid", "lod": "1", "boundaries": [shell[:1]]},
                    {
                        "type": "Solid",
                        "lod": "2.2",
                        "boundaries": [shell],
                        "semantics": {**semantics, "values": values},
                    },
                ],
            },
            "B2": {"type": "Building", "attributes": {"function": "1000"}, "children": ["B2-1"]},
            "B2-1": {
                "type": "BuildingPart",
                "parents": ["B2"],
                "attributes": {"measuredHeight": 12, "storeysAboveGround": 4},
                "geometry": [
                    {
                        "type": "Solid",
                        "lod": "2",
                        "boundaries": [part_shell],
                        "semantics": {**semantics, "values": [[0, 1, 2, 2, 2, 2]]},
                    },
                ],
            },
        },
        "vertices": all_verts,
    }


def test_cityjson_reads_transformed_vertices_semantics_and_parts(tmp_path):
    path = tmp_path / "tile.city.json"
    path.write_text(json.dumps(cityjson_document()), encoding="utf-8")
    result = read_cityjson([path])
    assert result.rejected == []
    by_id = {f["properties"]["id"]: f["properties"] for f in result.features}
    b1 = by_id["B1"]
    assert b1["eaves_height"] == pytest.approx(6.0) and b1["ridge_height"] == pytest.approx(9.0)
    assert b1["footprint_area"] == pytest.approx(100.0)
    assert (b1["measured_height"], b1["storeys"], b1["roof_type"]) == (9.0, 2, "3100")
    b2 = by_id["B2"]
    assert b2["building_parts"] == 1 and b2["function"] == "1000"
    assert (b2["measured_height"], b2["storeys"]) == (12.0, 4)
    assert b2["ridge_height"] == pytest.approx(12.0)
    assert b2["footprint_area"] == pytest.approx(50.0)


def test_cityjson_sequence_and_errors(tmp_path):
    document = cityjson_document()
    header = {k: v for k, v in document.items() if k not in ("CityObjects", "vertices")}
    header.update(CityObjects={}, vertices=[])
    feature_line = {
        "type": "CityJSONFeature",
        "id": "B1",
        "CityObjects": {"B1": document["CityObjects"]["B1"]},
        "vertices": document["vertices"],
    }
    path = tmp_path / "tile.city.jsonl"
    path.write_text(json.dumps(header) + "\n" + json.dumps(feature_line) + "\n", "utf-8")
    (feat,) = read_cityjson([path]).features
    assert feat["properties"]["ridge_height"] == pytest.approx(9.0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "FeatureCollection"}', "utf-8")
    with pytest.raises(UnreadableFileError, match=r"bad\.json: not CityJSON"):
        read_cityjson([bad])
