"""CityGML 1.0/2.0 LoD2 buildings -> footprints with LoD2 attributes.

Read as the German states publish LoD2 (Hamburg, Bavaria, Saxony): ``bldg:Building`` with
``bldg:function``, ``bldg:roofType``, ``bldg:measuredHeight``, ``bldg:storeysAboveGround``,
``bldg:boundedBy`` thematic surfaces (GroundSurface, RoofSurface, WallSurface, ...) and a
``bldg:lod2Solid`` whose surface members are inline polygons or ``xlink:href`` references to
them, optionally ``bldg:consistsOfBuildingPart``.

The parser streams (``lxml.etree.iterparse``) one building at a time and frees it, and
matches elements by local name, so CityGML 1.0 (``http://www.opengis.net/citygml/1.0``) and
2.0 (``.../2.0``) read the same. Coordinates come in ``gml:posList`` or ``gml:pos``; the CRS
is the ``srsName`` of the file's envelope or of the building's geometry (EPSG codes in any of
the usual spellings, or the AdV names ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``).

Derived values, per building or building part (heights in metres):

* ``ground``: the lowest z of its GroundSurface polygons; without a GroundSurface, the lowest
  z of all its polygons;
* footprint: the 2D union of its GroundSurface polygons (x, y; z dropped); without a
  GroundSurface, the 2D union of all polygons of its solid (or of all its surfaces when it has
  no solid) that have an area in plan view, i.e. the projection of the solid;
* ``eaves_height``: lowest z of its RoofSurface polygons minus ``ground`` (the lowest roof
  edge); ``ridge_height``: highest z of its RoofSurface polygons minus ``ground``; both null
  without RoofSurfaces. For a flat roof both are the roof height.

A building with parts gets the union of all footprints; ``measured_height``, ``storeys``,
``function`` and ``roof_type`` are the building's own when given, else those of its tallest
part (highest ``ridge_height``, then ``measured_height``); ``eaves_height`` and
``ridge_height`` are those of the tallest part (the building itself counts as a part when it
has surfaces of its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from lxml import etree
from shapely.geometry import MultiPolygon, Polygon, mapping

from cut_processes.io.records import (
    DEFAULT_SRID,
    ImportResult,
    UnreadableFileError,
    dedupe_ids,
    epsg_from_name,
    feature,
    parse_integer,
    parse_number,
    transformer,
)

FIELDS = {
    "id": "string",
    "gml_id": "string",
    "function": "string",
    "roof_type": "string",
    "measured_height": "number",
    "storeys": "integer",
    "eaves_height": "number",
    "ridge_height": "number",
    "footprint_area": "number",
    "building_parts": "integer",
    "address": "string",
    "source": "string",
}
GEOMETRY_TYPE = "MultiPolygon"

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
#: Licence notes by the state prefix of the building ids (AdV LoD2-DE).
LICENCES = {
    "DEHH": "Freie und Hansestadt Hamburg, LGV, dl-de/by-2-0",
    "DEBY": "Bayerische Vermessungsverwaltung, CC BY 4.0",
    "DESN": "GeoSN, dl-de/by-2-0",
}
#: Polygons smaller than this in plan view (m²) are walls seen edge-on.
MIN_PLAN_AREA = 1e-6
_SOLIDS = ("lod2Solid", "lod1Solid", "lod3Solid", "lod4Solid")


def local(tag: Any) -> str:
    """Local name of an element tag (``{ns}name`` -> ``name``); '' for comments."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _gml_id(element: etree._Element) -> str | None:
    for key, value in element.attrib.items():
        if local(key) == "id":
            return value
    return None


@dataclass
class Rings:
    """A polygon's rings as (n, 3) arrays, exterior first."""

    rings: list[np.ndarray]

    @property
    def z(self) -> np.ndarray:
        return np.concatenate([r[:, 2] for r in self.rings])

    def plan(self) -> Polygon | None:
        """The polygon in plan view (x, y), repaired; None when it has no area there."""
        shell, *holes = (r[:, :2] for r in self.rings)
        if len(shell) < 3:
            return None
        try:
            poly = Polygon(shell, [h for h in holes if len(h) >= 3])
        except (ValueError, shapely.errors.GEOSException):
            return None
        if poly.area < MIN_PLAN_AREA:
            return None
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
        return poly


@dataclass
class Part:
    """One building or building part: attributes and its polygons by kind."""

    gml_id: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    ground: list[Rings] = field(default_factory=list)
    roof: list[Rings] = field(default_factory=list)
    surfaces: list[Rings] = field(default_factory=list)
    solid: list[Rings] = field(default_factory=list)
    address: str | None = None

    @property
    def has_geometry(self) -> bool:
        return bool(self.ground or self.roof or self.surfaces or self.solid)

    def ground_z(self) -> float | None:
        polys = self.ground or self.solid or self.surfaces
        if not polys:
            return None
        return float(min(p.z.min() for p in polys))

    def footprint(self) -> shapely.Geometry | None:
        source = self.ground or self.solid or self.surfaces
        plans = [p for p in (r.plan() for r in source) if p is not None]
        if not plans:
            return None
        return _polygonal(shapely.union_all(plans))

    def roof_heights(self) -> tuple[float | None, float | None]:
        """(eaves, ridge) above this part's ground, metres."""
        ground = self.ground_z()
        if not self.roof or ground is None:
            return None, None
        low = min(float(p.z.min()) for p in self.roof)
        high = max(float(p.z.max()) for p in self.roof)
        return round(low - ground, 3), round(high - ground, 3)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """Only the polygons of a geometry (make_valid may add lines and points)."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon | MultiPolygon)]
    if not polys:
        return None
    return shapely.union_all(polys)


# --- coordinates ---------------------------------------------------------------------------


def _coordinates(ring: etree._Element, where: str) -> np.ndarray:
    """The (n, 3) coordinates of a LinearRing (posList, pos, or coordinates)."""
    values: list[float] = []
    dimension = None
    for child in ring:
        name = local(child.tag)
        if name in ("posList", "pos"):
            dim = child.get("srsDimension") or child.get("dimension")
            if dim:
                dimension = int(dim)
            values.extend(float(v) for v in (child.text or "").split())
        elif name == "coordinates":  # GML 2 style "x,y,z x,y,z"
            for tuple_ in (child.text or "").split():
                parts = tuple_.split(",")
                dimension = len(parts)
                values.extend(float(v) for v in parts)
    if dimension is None:
        dimension = 3 if len(values) % 3 == 0 else 2
    if not values or len(values) % dimension:
        raise ValueError(f"{where}: {len(values)} coordinate values for dimension {dimension}")
    coords = np.asarray(values, dtype=float).reshape(-1, dimension)
    if dimension == 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    return coords[:, :3]


def _polygon_rings(polygon: etree._Element, where: str) -> Rings:
    rings = []
    for boundary in polygon:
        if local(boundary.tag) not in (
            "exterior",
            "interior",
            "outerBoundaryIs",
            "innerBoundaryIs",
        ):
            continue
        for ring in boundary:
            if local(ring.tag) == "LinearRing":
                rings.append(_coordinates(ring, where))
    if not rings:
        raise ValueError(f"{where}: polygon {_gml_id(polygon) or ''} without an exterior ring")
    return Rings(rings)


def _polygons(element: etree._Element, where: str, stop: set[str]) -> Iterable[etree._Element]:
    """Polygon elements below ``element``, not descending into elements named in ``stop``."""
    for child in element:
        name = local(child.tag)
        if name in stop:
            continue
        if name in ("Polygon", "Triangle"):
            yield child
        else:
            yield from _polygons(child, where, stop)


def _hrefs(element: etree._Element, stop: set[str]) -> Iterable[str]:
    for child in element:
        if local(child.tag) in stop:
            continue
        href = child.get(XLINK_HREF)
        if href:
            yield href.lstrip("#")
        yield from _hrefs(child, stop)


# --- buildings -----------------------------------------------------------------------------

_ATTRIBUTES = ("function", "roofType", "measuredHeight", "storeysAboveGround")


def _read_part(element: etree._Element, where: str) -> tuple[Part, list[Part]]:
    """A Building or BuildingPart element -> its own Part and its BuildingParts."""
    part = Part(_gml_id(element))
    children: list[Part] = []
    by_id: dict[str, Rings] = {}
    solid_refs: list[str] = []
    stop = {"consistsOfBuildingPart"}
    for child in element:
        name = local(child.tag)
        if name in _ATTRIBUTES and child.text and child.text.strip():
            part.attributes.setdefault(name, child.text.strip())
        elif name == "boundedBy":
            for surface in child:
                kind = local(surface.tag)
                for poly in _polygons(surface, where, stop):
                    rings = _polygon_rings(poly, where)
                    pid = _gml_id(poly)
                    if pid:
                        by_id[pid] = rings
                    part.surfaces.append(rings)
                    if kind == "GroundSurface":
                        part.ground.append(rings)
                    elif kind == "RoofSurface":
                        part.roof.append(rings)
        elif name in _SOLIDS and not part.solid and not solid_refs:
            for poly in _polygons(child, where, stop):
                rings = _polygon_rings(poly, where)
                pid = _gml_id(poly)
                if pid:
                    by_id[pid] = rings
                part.solid.append(rings)
            solid_refs.extend(_hrefs(child, stop))
        elif name == "consistsOfBuildingPart":
            for sub in child:
                if local(sub.tag) == "BuildingPart":
                    own, nested = _read_part(sub, where)
                    children.append(own)
                    children.extend(nested)
        elif name == "address":
            part.address = _address(child)
    missing = [ref for ref in solid_refs if ref not in by_id]
    part.solid.extend(by_id[ref] for ref in solid_refs if ref in by_id)
    if missing and not part.solid:
        raise ValueError(f"{where}: solid references unknown polygons {missing[:3]}")
    return part, children


_ADDRESS_PARTS = ("ThoroughfareName", "ThoroughfareNumber", "PostalCodeNumber", "LocalityName")


def _address(element: etree._Element) -> str | None:
    texts: dict[str, str] = {}
    for node in element.iter():
        name = local(node.tag)
        if name in _ADDRESS_PARTS and node.text and node.text.strip():
            texts.setdefault(name, node.text.strip())
    if not texts:
        return None
    street = " ".join(
        filter(None, (texts.get("ThoroughfareName"), texts.get("ThoroughfareNumber")))
    )
    town = " ".join(filter(None, (texts.get("PostalCodeNumber"), texts.get("LocalityName"))))
    return ", ".join(t for t in (street, town) if t) or None


def _tallest(parts: Sequence[Part]) -> tuple[Part, float | None, float | None]:
    """The part with the highest ridge (then measured height), with its (eaves, ridge)."""
    best = None
    for part in parts:
        eaves, ridge = part.roof_heights()
        measured = _float_or_none(part.attributes.get("measuredHeight"))
        key = (ridge if ridge is not None else -1e9, measured if measured is not None else -1e9)
        if best is None or key > best[0]:
            best = (key, part, eaves, ridge)
    assert best is not None
    return best[1], best[2], best[3]


def _float_or_none(text: str | None) -> float | None:
    try:
        return parse_number(text)
    except ValueError:
        return None


def _licence(gml_id: str | None) -> str | None:
    if not gml_id:
        return None
    return LICENCES.get(gml_id[:4].upper())


def building_record(
    element: etree._Element, where: str, source_name: str, licence: str | None
) -> tuple[dict[str, Any], shapely.Geometry]:
    """One ``bldg:Building`` element -> (properties, footprint in the file's CRS).

    :raises ValueError: with the reason when the building cannot be used.
    """
    own, parts = _read_part(element, where)
    return merge_parts(own, parts, source_name, licence)


def merge_parts(
    own: Part, parts: Sequence[Part], source_name: str, licence: str | None
) -> tuple[dict[str, Any], shapely.Geometry]:
    """A building and its parts -> (properties, footprint); see the module docstring.

    :raises ValueError: with the reason when the building cannot be used.
    """
    candidates = ([own] if own.has_geometry else []) + list(parts)
    if not candidates:
        raise ValueError("no geometry (no surfaces, no solid, no building parts)")
    footprints = [fp for fp in (p.footprint() for p in candidates) if fp is not None]
    if not footprints:
        raise ValueError("no footprint: no GroundSurface and no surface with an area in plan view")
    footprint = _polygonal(shapely.union_all(footprints))
    if footprint is None or footprint.is_empty:
        raise ValueError("the footprint is empty")
    tallest, eaves, ridge = _tallest(candidates)

    def attribute(name: str) -> str | None:
        if name in own.attributes:
            return own.attributes[name]
        return tallest.attributes.get(name) or next(
            (p.attributes[name] for p in parts if name in p.attributes), None
        )

    try:
        measured = parse_number(attribute("measuredHeight"))
    except ValueError as err:
        raise ValueError(f"measuredHeight: {err}") from None
    try:
        storeys = parse_integer(attribute("storeysAboveGround"))
    except ValueError as err:
        raise ValueError(f"storeysAboveGround: {err}") from None
    gml_id = own.gml_id
    licence = licence or _licence(gml_id)
    properties = {
        "id": gml_id,
        "gml_id": gml_id,
        "function": attribute("function"),
        "roof_type": attribute("roofType"),
        "measured_height": measured,
        "storeys": storeys,
        "eaves_height": eaves,
        "ridge_height": ridge,
        "footprint_area": None,
        "building_parts": len(parts),
        "address": own.address or next((p.address for p in parts if p.address), None),
        "source": f"{source_name}" + (f"; {licence}" if licence else ""),
    }
    return properties, footprint


def to_feature(
    properties: dict[str, Any], footprint: shapely.Geometry, to_target: Any
) -> dict[str, Any]:
    """Reproject a footprint (``to_target`` a pyproj Transformer or None), set its area.

    :raises ValueError: when the footprint is invalid after reprojection.
    """
    if to_target is not None:
        footprint = shapely.transform(
            footprint, lambda xy: np.column_stack(to_target.transform(xy[:, 0], xy[:, 1]))
        )
    if not footprint.is_valid:
        footprint = _polygonal(shapely.make_valid(footprint))
        if footprint is None:
            raise ValueError("footprint invalid after reprojection")
    if isinstance(footprint, Polygon):
        footprint = MultiPolygon([footprint])
    properties["footprint_area"] = round(float(footprint.area), 2)
    return feature(properties, mapping(footprint))


def _free(element: etree._Element) -> None:
    """Drop a processed building and the city object members before it (streaming)."""
    element.clear(keep_tail=True)
    member = element.getparent()
    model = member.getparent() if member is not None else None
    if model is None:
        return
    while member.getprevious() is not None:
        del model[0]


def _file_srid(path: Path) -> int | None:
    """The EPSG code of the first srsName in the file (usually the envelope's).

    :raises UnreadableFileError: the beginning of the file shows no building at all.
    """
    with path.open("rb") as fh:
        head = fh.read(1 << 20).decode("utf-8", errors="replace")
    match = re.search(r'srsName="([^"]+)"', head)
    if match is None and "Building" not in head:
        raise UnreadableFileError(path, "holds no bldg:Building (is it CityGML?)")
    return epsg_from_name(match.group(1)) if match else None


def read_citygml(
    paths: Sequence[str | Path],
    *,
    source_srid: int | None = None,
    target_srid: int = DEFAULT_SRID,
    licence: str | None = None,
) -> ImportResult:
    """Buildings of CityGML files as footprints (MultiPolygon in ``target_srid``).

    :param source_srid: EPSG code of the coordinates when the files name none (or wrongly).
    :param licence: licence note for ``source``; default by the state prefix of the ids.
    :raises UnreadableFileError: a file is no XML, or names no CRS and none is given.
    """
    result = ImportResult([], dict(FIELDS), GEOMETRY_TYPE, target_srid)
    for path in map(Path, paths):
        result.extend(_read_file(path, source_srid, target_srid, licence))
    dedupe_ids(result, "CityGML")
    return result


def _read_file(
    path: Path, source_srid: int | None, target_srid: int, licence: str | None
) -> ImportResult:
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    result = ImportResult([], dict(FIELDS), GEOMETRY_TYPE, target_srid)
    srid = source_srid or _file_srid(path)
    if srid is None:
        raise UnreadableFileError(
            path, "names no CRS (srsName); give the EPSG code of its coordinates"
        )
    to_target = None if srid == target_srid else transformer(f"EPSG:{srid}", target_srid)
    count = 0
    try:
        for _event, element in etree.iterparse(
            str(path), events=("end",), tag=("{*}Building",), huge_tree=True, remove_comments=True
        ):
            # A Building inside another one does not exist in CityGML; BuildingParts are
            # read with their Building.
            count += 1
            gml_id = _gml_id(element) or f"#{count}"
            where = f"{path.name} building {gml_id}"
            try:
                properties, footprint = building_record(element, where, path.name, licence)
                if properties["id"] is None:
                    raise ValueError("building without gml:id")
                result.features.append(to_feature(properties, footprint, to_target))
            except ValueError as err:
                result.reject(where, str(err))
            finally:
                _free(element)
    except etree.XMLSyntaxError as err:
        raise UnreadableFileError(path, f"not well-formed XML: {err}") from None
    if count == 0 and not result.rejected:
        raise UnreadableFileError(path, "holds no bldg:Building (is it CityGML?)")
    return result
