"""Blocks of the demo district: the land between street corridors, with quarter and typology.

A block is what remains of the district box after removing every street corridor. Each block
belongs to one of four invented quarters and gets a building typology drawn from weights that
depend on the quarter (e.g. Gründerzeit perimeter blocks in the west, halls in the east).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import LineString, Polygon, box
from shapely.ops import unary_union

from cut_processes.demo.constants import EDGE_MARGIN, XMAX, XMIN, YMAX, YMIN
from cut_processes.demo.streets import RESIDENTIAL, SERVICE, Street, StreetGrid, make_street

# Invented quarter names (none is a real Hamburg quarter).
ELBHOEHE, LINDEN, ZIEGEL, KIRCHEN = "Elbhöhe", "Lindenquartier", "Ziegelfeld", "Kirchenfeld"
DISTRICTS = (ELBHOEHE, LINDEN, ZIEGEL, KIRCHEN)
WATERFRONT = "Elbhöhe (Hafenkante)"  # typology zone, reported as ELBHOEHE

#: Blocks larger than this (m²) are split by an additional street.
MAX_BLOCK_AREA = 45000.0

# Block typologies.
GRUENDERZEIT = "gruenderzeit"  # perimeter block split into parcels, with courtyard buildings
INTERWAR_RING = "interwar_ring"  # 1920s/30s brick block, one building with a courtyard
MODERN_RING = "modern_ring"  # closed modern block with a courtyard
MODERN_OPEN = "modern_open"  # open perimeter block of large modern buildings
POSTWAR = "postwar"  # post-war slabs (Zeilenbau), sometimes a tower
HOUSES = "houses"  # detached houses and villas
INDUSTRIAL = "industrial"  # halls, workshops, offices
SCHOOL = "school"  # school buildings, gym, kindergarten
PARK = "park"  # green space, maybe a pavilion or kindergarten

_WEIGHTS: dict[str, dict[str, float]] = {
    LINDEN: {
        GRUENDERZEIT: 0.42,
        INTERWAR_RING: 0.08,
        MODERN_RING: 0.05,
        MODERN_OPEN: 0.08,
        POSTWAR: 0.1,
        SCHOOL: 0.05,
        PARK: 0.12,
        HOUSES: 0.03,
        INDUSTRIAL: 0.07,
    },
    ZIEGEL: {
        INDUSTRIAL: 0.42,
        MODERN_OPEN: 0.16,
        MODERN_RING: 0.06,
        GRUENDERZEIT: 0.12,
        POSTWAR: 0.08,
        PARK: 0.09,
        SCHOOL: 0.03,
        HOUSES: 0.04,
    },
    KIRCHEN: {
        POSTWAR: 0.3,
        INTERWAR_RING: 0.14,
        HOUSES: 0.18,
        GRUENDERZEIT: 0.12,
        SCHOOL: 0.06,
        PARK: 0.1,
        MODERN_OPEN: 0.05,
        INDUSTRIAL: 0.03,
    },
    ELBHOEHE: {
        HOUSES: 0.42,
        GRUENDERZEIT: 0.08,
        POSTWAR: 0.12,
        PARK: 0.18,
        MODERN_OPEN: 0.14,
        SCHOOL: 0.06,
    },
    WATERFRONT: {INDUSTRIAL: 0.6, MODERN_OPEN: 0.25, PARK: 0.15},
}


@dataclass
class Block:
    """A block of land between streets (polygon in EPSG:25832 metres)."""

    index: int
    polygon: Polygon
    district: str
    typology: str
    angle: float  # orientation of the block's long axis, degrees counter-clockwise from east
    zone: str  # typology zone: the district, or WATERFRONT south of the curved street


def long_axis_angle(polygon: Polygon) -> float:
    """Angle (degrees, in (-90, 90]) of the long side of the minimum rotated rectangle."""
    rect = np.asarray(shapely.oriented_envelope(polygon).exterior.coords)
    edges = np.diff(rect[:3], axis=0)
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    dx, dy = edges[int(np.argmax(lengths))]
    angle = float(np.degrees(np.arctan2(dy, dx)))
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    return round(angle, 6)


def corridors(streets: list[Street]) -> shapely.Geometry:
    """Union of all street corridors (street space between building lines)."""
    shapes = [
        s.geometry.buffer(s.corridor / 2.0, cap_style="flat", join_style="round", quad_segs=4)
        for s in streets
    ]
    return unary_union(shapes)


def _split_parts(geom: shapely.Geometry, min_area: float) -> list[Polygon]:
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon)]
    parts = [p.simplify(0.2) for p in parts if p.area >= min_area]
    return sorted(parts, key=lambda p: (round(p.centroid.y, 1), round(p.centroid.x, 1)))


def _district_of(polygon: Polygon, grid: StreetGrid, hang_y: float) -> tuple[str, str]:
    """(quarter name, typology zone) of a block."""
    c = polygon.centroid
    if c.y < grid.first_row_y:
        return ELBHOEHE, (WATERFRONT if c.y < hang_y else ELBHOEHE)
    if c.x < grid.primary_x:
        return LINDEN, LINDEN
    if c.y < grid.primary_y:
        return ZIEGEL, ZIEGEL
    return KIRCHEN, KIRCHEN


def draw_typology(
    zone: str, area: float, rng: np.random.Generator, exclude: tuple[str, ...] = ()
) -> str:
    """A typology for a block of ``area`` m² in ``zone``, drawn from the zone's weights."""
    weights = dict(_WEIGHTS[zone])
    if area < 3000.0:  # small leftover blocks: a few houses or green
        weights = {HOUSES: 0.5, PARK: 0.5} if zone != WATERFRONT else {PARK: 1.0}
    weights = {k: v for k, v in weights.items() if k not in exclude} or {HOUSES: 1.0}
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _cut_line(block: Polygon, angle: float, offset: float = 0.0) -> shapely.Geometry:
    """A line through the block (shifted by ``offset`` m along ``angle``) in direction ``angle``.

    It reaches 8 m past the block so that it joins the surrounding street corridors.
    """
    c = block.centroid
    a = np.radians(angle)
    along = np.array([np.cos(a), np.sin(a)])
    across = np.array([-along[1], along[0]])
    centre = np.array([c.x, c.y]) + across * offset
    reach = 2.0 * np.sqrt(block.area) + 200.0
    line = LineString([centre - along * reach, centre + along * reach])
    inside = box(XMIN, YMIN, XMAX, YMAX)
    return line.intersection(block.buffer(8.0)).intersection(inside)


def _split_block(
    poly: Polygon, angle: float, road_class: str, grid: StreetGrid, rng: np.random.Generator
) -> tuple[list[Polygon], Street | None]:
    """Split ``poly`` by a new street along ``angle``; ([poly], None) if that fails."""
    line = _cut_line(poly, angle, offset=0.0)
    if not isinstance(line, LineString) or line.length < 40.0:
        return [poly], None
    street = make_street(line, road_class, grid.namer, rng)
    pieces = _split_parts(poly.difference(corridors([street])), min_area=600.0)
    if len(pieces) < 2:
        return [poly], None
    return pieces, street


def build_blocks(
    grid: StreetGrid, hang_y_of: Callable[[float], np.ndarray], rng: np.random.Generator
) -> tuple[list[Block], list[Street]]:
    """Blocks (with quarter and typology) and the streets added to split very large blocks.

    ``hang_y_of(x)`` returns the northing of the curved slope street at easting ``x``.
    """
    area = box(XMIN + EDGE_MARGIN, YMIN + EDGE_MARGIN, XMAX - EDGE_MARGIN, YMAX - EDGE_MARGIN)
    queue = _split_parts(area.difference(corridors(grid.streets)), min_area=600.0)
    added: list[Street] = []
    raw: list[Polygon] = []
    while queue:  # very large blocks (merged by interrupted streets) get a new street
        poly = queue.pop(0)
        if poly.area > MAX_BLOCK_AREA:
            pieces, street = _split_block(
                poly, long_axis_angle(poly) + 90.0, RESIDENTIAL, grid, rng
            )
            if street is not None:
                added.append(street)
                queue.extend(pieces)
                continue
        raw.append(poly)
    raw.sort(key=lambda p: (round(p.centroid.y, 1), round(p.centroid.x, 1)))
    drafts = []
    for poly in raw:
        district, zone = _district_of(poly, grid, float(hang_y_of(poly.centroid.x)))
        typology = draw_typology(zone, poly.area, rng)
        if typology == INDUSTRIAL and poly.area > 25000.0:  # a service lane through it
            pieces, lane = _split_block(poly, long_axis_angle(poly), SERVICE, grid, rng)
            if lane is not None:
                added.append(lane)
                drafts.extend((p, district, typology, zone) for p in pieces)
                continue
        drafts.append((poly, district, typology, zone))
    blocks = [
        Block(i, poly, district, typology, long_axis_angle(poly), zone)
        for i, (poly, district, typology, zone) in enumerate(drafts)
    ]
    return blocks, added
