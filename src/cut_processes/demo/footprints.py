"""Building footprints per block typology (EPSG:25832 metres).

Shapes: parcels of a perimeter block (rectangles along the street, L-shaped corner buildings),
closed blocks with a courtyard (one polygon with a hole), courtyard buildings (workshops,
terraced rows, garages), post-war slabs and towers, detached houses and villas (some L-shaped),
halls, offices, schools, gyms and kindergartens.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import MultiLineString, Polygon, affinity, box
from shapely.geometry.polygon import orient
from shapely.ops import split

from cut_processes.demo import layout as lt
from cut_processes.demo.layout import Block

# Building kinds (the typology of a single building; attributes follow from it).
GZ_ROW = "gz_row"  # Gründerzeit parcel building on the street
TERRACE = "terrace"  # small terraced houses in a courtyard (Ottensen "Terrasse")
WORKSHOP = "workshop"  # small commercial building, courtyard or industrial
GARAGE = "garage"
INTERWAR = "interwar"  # 1920s/30s brick block
POSTWAR_SLAB = "postwar_slab"
TOWER = "tower"
MODERN = "modern"
OFFICE = "office"
HOUSE = "house"
VILLA = "villa"
HALL = "hall"
SCHOOL_BUILDING = "school"
GYM = "gym"
KITA = "kita"
PAVILION = "pavilion"


@dataclass
class Footprint:
    """A building footprint and what kind of building stands on it."""

    polygon: Polygon
    kind: str
    depth: float  # building depth (short horizontal dimension) in metres, for the roof
    block: int  # index of the block


class LocalFrame:
    """Rotation into a block's frame where its long axis is the x axis (metres)."""

    def __init__(self, angle: float, origin: tuple[float, float]) -> None:
        self.angle = angle
        self.origin = origin

    def to_local(self, geom: shapely.Geometry) -> shapely.Geometry:
        return affinity.rotate(geom, -self.angle, origin=self.origin)

    def to_world(self, geom: shapely.Geometry) -> shapely.Geometry:
        return affinity.rotate(geom, self.angle, origin=self.origin)


def rectangularity(poly: shapely.Geometry) -> float:
    """Area of ``poly`` over the area of its minimum rotated rectangle (1 for a rectangle)."""
    env = shapely.oriented_envelope(poly)
    return float(poly.area / env.area) if env.area > 0 else 0.0


def largest_polygon(geom: shapely.Geometry) -> Polygon | None:
    """The largest polygon part of ``geom`` (None when it has no area)."""
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and g.area > 0]
    return max(parts, key=lambda g: g.area) if parts else None


def _oriented_rect(cx: float, cy: float, w: float, d: float, angle: float) -> Polygon:
    """Rectangle centred at (cx, cy), ``w`` along direction ``angle`` (radians), ``d`` across."""
    u = np.array([np.cos(angle), np.sin(angle)]) * (w / 2.0)
    v = np.array([-np.sin(angle), np.cos(angle)]) * (d / 2.0)
    c = np.array([cx, cy])
    return Polygon([c - u - v, c + u - v, c + u + v, c - u + v])


def _interior_angle(prev: np.ndarray, p: np.ndarray, nxt: np.ndarray) -> float:
    """Interior angle (radians) at ``p`` of a counter-clockwise ring."""
    e1, e2 = p - prev, nxt - p
    turn = np.arctan2(e1[0] * e2[1] - e1[1] * e2[0], e1 @ e2)
    return float(np.pi - turn)


def _corner_setback(theta: float, depth: float) -> float:
    """Distance along an edge from a corner to where the corner building's band ends."""
    if theta >= np.pi - 0.05:  # straight or concave corner
        return 2.0
    return float(depth / np.tan(theta / 2.0))


def perimeter_pieces(
    outer: Polygon,
    depth: float,
    widths: tuple[float, float],
    rng: np.random.Generator,
    corner_extra: tuple[float, float] = (3.0, 9.0),
) -> tuple[list[Polygon], Polygon | None]:
    """Split the band of ``depth`` metres along the boundary of ``outer`` into parcels.

    Parcels are ``widths`` metres wide along the street; corner parcels become L-shapes.
    Returns the parcels and the courtyard (None when the block is too small for one).
    """
    inner = outer.buffer(-depth, join_style="mitre", mitre_limit=10.0)
    if inner.is_empty or inner.area < 150.0:
        return [], None
    band = outer.difference(inner)
    coords = np.asarray(orient(outer, 1.0).exterior.coords)[:-1]
    n = len(coords)
    cuts = []
    for k in range(n):
        prev, p0, p1, nxt = coords[k - 1], coords[k], coords[(k + 1) % n], coords[(k + 2) % n]
        length = float(np.hypot(*(p1 - p0)))
        if length < 1.0:
            continue
        direction = (p1 - p0) / length
        normal = np.array([-direction[1], direction[0]])  # into the block (CCW ring)
        start = _corner_setback(_interior_angle(prev, p0, p1), depth)
        end = length - _corner_setback(_interior_angle(p0, p1, nxt), depth) - widths[0] * 0.7
        t = start + rng.uniform(*corner_extra)
        while t < end:
            q = p0 + direction * t
            cuts.append([tuple(q - normal * 1.5), tuple(q + normal * (depth + 1.5))])
            t += rng.uniform(*widths)
    pieces = split(band, MultiLineString(cuts)).geoms if cuts else [band]
    out = [p for p in pieces if isinstance(p, Polygon) and p.area >= 40.0]
    out = [p for p in out if rectangularity(p) >= 0.4]
    court = largest_polygon(inner)
    return out, court


def _trim(piece: Polygon, outer: Polygon, keep_depth: float) -> Polygon:
    """``piece`` cut back to ``keep_depth`` metres from the street line of ``outer``."""
    trimmed = largest_polygon(piece.difference(outer.buffer(-keep_depth, join_style="mitre")))
    return trimmed if trimmed is not None and trimmed.area >= 40.0 else piece


class Placer:
    """Places axis-aligned rectangles in a block's local frame without overlaps."""

    def __init__(self, area: shapely.Geometry, frame: LocalFrame, gap: float = 2.0) -> None:
        self.frame = frame
        self.area = frame.to_local(area)
        self.gap = gap
        self.placed: list[Polygon] = []

    def block(self, world_geoms: list[Polygon]) -> None:
        """Mark existing (world) footprints as occupied."""
        self.placed.extend(self.frame.to_local(g) for g in world_geoms)

    def fits(self, rect: Polygon) -> bool:
        if self.area.is_empty or not rect.within(self.area):
            return False
        return not any(rect.distance(p) < self.gap for p in self.placed)

    def place(
        self, w: float, d: float, rng: np.random.Generator, tries: int = 25, units: int = 1
    ) -> list[Polygon]:
        """Place a ``w`` x ``d`` rectangle (split into ``units`` along x); world polygons."""
        if self.area.is_empty:
            return []
        minx, miny, maxx, maxy = self.area.bounds
        for _ in range(tries):
            rotate = rng.random() < 0.3
            ww, dd = (d, w) if rotate and units == 1 else (w, d)
            if maxx - minx < ww or maxy - miny < dd:
                continue
            x = rng.uniform(minx, maxx - ww)
            y = rng.uniform(miny, maxy - dd)
            rect = box(x, y, x + ww, y + dd)
            if self.fits(rect):
                self.placed.append(rect)
                step = ww / units
                parts = [box(x + i * step, y, x + (i + 1) * step, y + dd) for i in range(units)]
                return [self.frame.to_world(p) for p in parts]
        return []


def _frame(block: Block) -> LocalFrame:
    c = block.polygon.centroid
    return LocalFrame(block.angle, (c.x, c.y))


def _courtyard_fill(
    court: Polygon, block: Block, rng: np.random.Generator, density: float
) -> list[Footprint]:
    """Workshops, terraced rows and garage rows in a courtyard."""
    placer = Placer(court.buffer(-2.0), _frame(block))
    out: list[Footprint] = []
    for _ in range(int(rng.poisson(court.area * density))):
        r = rng.random()
        if r < 0.3:
            units = int(rng.integers(3, 7))
            depth = rng.uniform(6.5, 8.0)
            parts = placer.place(units * rng.uniform(5.5, 6.5), depth, rng, units=units)
            out.extend(Footprint(p, TERRACE, depth, block.index) for p in parts)
        elif r < 0.65:
            w, d = rng.uniform(9.0, 20.0), rng.uniform(7.0, 12.0)
            out.extend(
                Footprint(p, WORKSHOP, min(w, d), block.index) for p in placer.place(w, d, rng)
            )
        else:
            units = int(rng.integers(2, 6))
            parts = placer.place(units * rng.uniform(3.0, 3.4), 6.0, rng, units=units)
            out.extend(Footprint(p, GARAGE, 6.0, block.index) for p in parts)
    return out


def _gruenderzeit(block: Block, rng: np.random.Generator) -> list[Footprint]:
    depth = rng.uniform(11.5, 15.0)
    outer = block.polygon
    pieces, court = perimeter_pieces(outer, depth, (16.0, 30.0), rng)
    out = []
    for piece in pieces:
        r = rng.random()
        if r < 0.04:
            continue  # gap site
        if r < 0.3:
            piece = _trim(piece, outer, depth * rng.uniform(0.65, 0.9))
        out.append(Footprint(piece, GZ_ROW, depth, block.index))
    if court is not None:
        out.extend(_courtyard_fill(court, block, rng, density=1.0 / 8000.0))
    return out


def _ring(block: Block, rng: np.random.Generator, kind: str) -> list[Footprint]:
    setback = rng.uniform(0.0, 3.0) if kind == INTERWAR else rng.uniform(0.0, 4.0)
    depth = rng.uniform(11.0, 13.0) if kind == INTERWAR else rng.uniform(12.0, 15.0)
    outer = largest_polygon(block.polygon.buffer(-setback, join_style="mitre"))
    if outer is None:
        return []
    if block.polygon.area > 30000.0:  # too large for one building: long bars with gaps
        pieces, court = perimeter_pieces(outer, depth, (28.0, 60.0), rng, (8.0, 20.0))
        out = [Footprint(p, kind, depth, block.index) for p in pieces if rng.random() > 0.15]
    else:
        inner = outer.buffer(-depth, join_style="mitre", mitre_limit=10.0)
        ring = outer.difference(inner)
        if not (isinstance(ring, Polygon) and len(ring.interiors) == 1 and ring.is_valid):
            return _modern_open(block, rng, kind)
        out, court = [Footprint(ring, kind, depth, block.index)], largest_polygon(inner)
    if court is not None and rng.random() < 0.25:
        placer = Placer(court.buffer(-4.0), _frame(block))
        w, d = rng.uniform(16.0, 24.0), rng.uniform(10.0, 14.0)
        out.extend(Footprint(p, KITA, min(w, d), block.index) for p in placer.place(w, d, rng))
    return out


def _modern_open(block: Block, rng: np.random.Generator, kind: str = MODERN) -> list[Footprint]:
    depth = rng.uniform(12.0, 16.0)
    outer = largest_polygon(block.polygon.buffer(-rng.uniform(0.0, 3.0), join_style="mitre"))
    if outer is None:
        return []
    pieces, court = perimeter_pieces(outer, depth, (22.0, 48.0), rng, (6.0, 16.0))
    out = [Footprint(p, kind, depth, block.index) for p in pieces if rng.random() > 0.3]
    if court is not None and rng.random() < 0.35:
        placer = Placer(court.buffer(-8.0), _frame(block))
        side = rng.uniform(18.0, 24.0)
        towers = placer.place(side, side, rng, tries=60)
        out.extend(Footprint(p, TOWER, side, block.index) for p in towers)
    return out


def _postwar(block: Block, rng: np.random.Generator) -> list[Footprint]:
    turn = 90.0 if rng.random() < 0.4 else 0.0
    c = block.polygon.centroid
    frame = LocalFrame(block.angle + turn, (c.x, c.y))
    area = largest_polygon(block.polygon.buffer(-rng.uniform(4.0, 7.0), join_style="mitre"))
    if area is None:
        return []
    local = frame.to_local(area)
    minx, miny, maxx, maxy = local.bounds
    depth = rng.uniform(10.0, 12.5)
    spacing = depth + rng.uniform(16.0, 26.0)
    slabs: list[Polygon] = []
    y = miny + rng.uniform(0.0, 6.0)
    while y + depth <= maxy:
        x = minx + rng.uniform(0.0, 8.0)
        while x < maxx - 20.0:
            length = rng.uniform(30.0, 70.0)
            rect = box(x, y, min(x + length, maxx), y + depth)
            shape = largest_polygon(rect.intersection(local))
            if shape is not None and shape.area >= 20.0 * depth and rectangularity(shape) > 0.97:
                slabs.append(shape)
            x += length + rng.uniform(10.0, 22.0)
        y += spacing
    out = [Footprint(frame.to_world(s), POSTWAR_SLAB, depth, block.index) for s in slabs]
    placer = Placer(area, frame, gap=6.0)
    placer.block([f.polygon for f in out])
    if rng.random() < 0.5:
        side = rng.uniform(18.0, 24.0)
        towers = placer.place(side, side, rng, tries=80)
        out.extend(Footprint(p, TOWER, side, block.index) for p in towers)
    if rng.random() < 0.4:
        units = int(rng.integers(4, 9))
        parts = placer.place(units * 3.1, 6.0, rng, units=units)
        out.extend(Footprint(p, GARAGE, 6.0, block.index) for p in parts)
    if rng.random() < 0.12:
        w, d = rng.uniform(16.0, 24.0), rng.uniform(10.0, 14.0)
        out.extend(Footprint(p, KITA, min(w, d), block.index) for p in placer.place(w, d, rng))
    return out


def _houses(block: Block, rng: np.random.Generator) -> list[Footprint]:
    villa_share = 0.5 if block.district == lt.ELBHOEHE else 0.12
    poly = block.polygon
    inside = poly.buffer(-1.5)
    placed: list[Polygon] = []
    out: list[Footprint] = []

    def accept(shape: Polygon, kind: str, depth: float) -> bool:
        if not shape.within(inside) or any(shape.distance(p) < 3.0 for p in placed):
            return False
        placed.append(shape)
        out.append(Footprint(shape, kind, depth, block.index))
        return True

    coords = np.asarray(orient(poly, 1.0).exterior.coords)
    for p0, p1 in itertools.pairwise(coords):
        length = float(np.hypot(*(p1 - p0)))
        if length < 16.0:
            continue
        direction = (p1 - p0) / length
        normal = np.array([-direction[1], direction[0]])
        angle = float(np.arctan2(direction[1], direction[0]))
        t = rng.uniform(2.0, 6.0)
        while t < length - 12.0:
            lot = rng.uniform(22.0, 34.0)
            villa = rng.random() < villa_share
            w = rng.uniform(13.0, 19.0) if villa else rng.uniform(9.0, 14.0)
            d = rng.uniform(11.0, 16.0) if villa else rng.uniform(8.0, 12.0)
            setback = rng.uniform(4.0, 8.0)
            centre = p0 + direction * (t + lot / 2.0) + normal * (setback + d / 2.0)
            shape = _oriented_rect(centre[0], centre[1], w, d, angle)
            if rng.random() < (0.45 if villa else 0.2):  # L-shape: a wing to the back
                ww, wd = rng.uniform(5.0, 8.0), rng.uniform(5.0, 9.0)
                side = 1.0 if rng.random() < 0.5 else -1.0
                wc = centre + direction * side * (w - ww) / 2.0 + normal * (d + wd) / 2.0
                wing = _oriented_rect(wc[0], wc[1], ww, wd + 0.2, angle)
                shape = shapely.union(shape, wing).simplify(0.05)
            if accept(shape, VILLA if villa else HOUSE, d) and rng.random() < 0.3:
                gc = centre + direction * (w / 2.0 + 2.8) + normal * (3.0 - d / 2.0)
                accept(_oriented_rect(gc[0], gc[1], 3.2, 6.0, angle), GARAGE, 3.2)
            t += lot
    # second-row houses in deep blocks
    placer = Placer(inside, _frame(block), gap=4.0)
    placer.block(placed)
    for _ in range(int(poly.area // 4000)):
        w, d = rng.uniform(9.0, 13.0), rng.uniform(8.0, 11.0)
        out.extend(Footprint(p, HOUSE, min(w, d), block.index) for p in placer.place(w, d, rng))
    return out


def _guillotine(
    cell: tuple[float, float, float, float], max_side: float, rng: np.random.Generator
) -> list[tuple[float, float, float, float]]:
    """Recursively split an axis-aligned rectangle until no side exceeds ``max_side``."""
    x0, y0, x1, y1 = cell
    w, h = x1 - x0, y1 - y0
    if max(w, h) <= max_side:
        return [cell]
    f = rng.uniform(0.35, 0.65)
    if w >= h:
        xm = x0 + w * f
        return _guillotine((x0, y0, xm, y1), max_side, rng) + _guillotine(
            (xm, y0, x1, y1), max_side, rng
        )
    ym = y0 + h * f
    return _guillotine((x0, y0, x1, ym), max_side, rng) + _guillotine(
        (x0, ym, x1, y1), max_side, rng
    )


def _industrial(block: Block, rng: np.random.Generator) -> list[Footprint]:
    frame = _frame(block)
    area = largest_polygon(block.polygon.buffer(-rng.uniform(3.0, 6.0), join_style="mitre"))
    if area is None:
        return []
    local = frame.to_local(area)
    out = []
    for x0, y0, x1, y1 in _guillotine(local.bounds, rng.uniform(60.0, 110.0), rng):
        r = rng.random()
        if r < 0.12:
            continue  # yard, parking
        m = rng.uniform(3.0, 8.0)
        if x1 - x0 < 2 * m + 8.0 or y1 - y0 < 2 * m + 8.0:
            continue
        shape = largest_polygon(box(x0 + m, y0 + m, x1 - m, y1 - m).intersection(local))
        if shape is None or shape.area < 120.0 or rectangularity(shape) < 0.8:
            continue
        if r < 0.32 and shape.area > 300.0:  # office at the front: a smaller building
            sx = min(x1 - x0 - 2 * m, rng.uniform(20.0, 40.0))
            sy = min(y1 - y0 - 2 * m, rng.uniform(12.0, 16.0))
            office = box(x0 + m, y0 + m, x0 + m + sx, y0 + m + sy)
            if office.within(local):
                out.append(Footprint(frame.to_world(office), OFFICE, min(sx, sy), block.index))
                continue
        kind = WORKSHOP if shape.area < 400.0 else HALL
        env = shapely.oriented_envelope(shape)
        e = np.diff(np.asarray(env.exterior.coords)[:3], axis=0)
        depth = float(min(np.hypot(*e[0]), np.hypot(*e[1])))
        out.append(Footprint(frame.to_world(shape), kind, depth, block.index))
    return out


def _school(block: Block, rng: np.random.Generator) -> list[Footprint]:
    depth = rng.uniform(12.0, 15.0)
    outer = largest_polygon(block.polygon.buffer(-rng.uniform(3.0, 6.0), join_style="mitre"))
    if outer is None:
        return []
    pieces, court = perimeter_pieces(outer, depth, (35.0, 70.0), rng, (10.0, 25.0))
    pieces = sorted(pieces, key=lambda p: -p.area)[: int(rng.integers(1, 4))]
    out = [Footprint(p, SCHOOL_BUILDING, depth, block.index) for p in pieces]
    placer = Placer(court.buffer(-3.0) if court is not None else outer, _frame(block), gap=6.0)
    placer.block(pieces)
    w, d = rng.uniform(30.0, 45.0), rng.uniform(18.0, 26.0)
    out.extend(Footprint(p, GYM, d, block.index) for p in placer.place(w, d, rng, tries=60))
    if rng.random() < 0.5:
        w, d = rng.uniform(18.0, 26.0), rng.uniform(10.0, 14.0)
        out.extend(Footprint(p, KITA, d, block.index) for p in placer.place(w, d, rng))
    return out


def _park(block: Block, rng: np.random.Generator) -> list[Footprint]:
    placer = Placer(block.polygon.buffer(-8.0), _frame(block), gap=5.0)
    out: list[Footprint] = []
    if rng.random() < 0.25:
        w, d = rng.uniform(16.0, 24.0), rng.uniform(10.0, 14.0)
        out.extend(Footprint(p, KITA, d, block.index) for p in placer.place(w, d, rng))
    if rng.random() < 0.2:
        w, d = rng.uniform(8.0, 14.0), rng.uniform(6.0, 9.0)
        out.extend(Footprint(p, PAVILION, d, block.index) for p in placer.place(w, d, rng))
    return out


_BUILDERS: dict[str, Callable[[Block, np.random.Generator], list[Footprint]]] = {
    lt.GRUENDERZEIT: _gruenderzeit,
    lt.INTERWAR_RING: lambda b, rng: _ring(b, rng, INTERWAR),
    lt.MODERN_RING: lambda b, rng: _ring(b, rng, MODERN),
    lt.MODERN_OPEN: _modern_open,
    lt.POSTWAR: _postwar,
    lt.HOUSES: _houses,
    lt.INDUSTRIAL: _industrial,
    lt.SCHOOL: _school,
    lt.PARK: _park,
}


def _clean(fp: Footprint) -> Footprint | None:
    """Snap to a 1 cm grid, drop what is invalid or tiny after snapping."""
    poly = largest_polygon(shapely.set_precision(fp.polygon, 0.01))
    if poly is None or not poly.is_valid or poly.area < 12.0:
        return None
    fp.polygon = orient(poly, 1.0)
    return fp


#: Range of the number of buildings the district is balanced into.
MIN_BUILDINGS, MAX_BUILDINGS = 1950, 2250

#: Kinds that may be thinned out to keep the count in range (small accessory buildings).
_OPTIONAL = (GARAGE, TERRACE, WORKSHOP)


def _block_footprints(block: Block, rng: np.random.Generator) -> list[Footprint]:
    fps = _BUILDERS[block.typology](block, rng)
    if not fps and block.typology not in (lt.PARK, lt.HOUSES):
        fps = _houses(block, rng)
    return [f for f in (_clean(fp) for fp in fps) if f is not None]


def _overlap(a: Footprint, b: Footprint) -> float:
    """Area (m²) shared by two footprints."""
    return float(a.polygon.intersection(b.polygon).area)


def _no_overlaps(fps: list[Footprint]) -> list[Footprint]:
    """Drop any footprint overlapping an earlier one by more than 0.5 m² (a safety net)."""
    tree = shapely.STRtree([f.polygon for f in fps])
    drop: set[int] = set()
    left, right = tree.query([f.polygon for f in fps], predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i < j and i not in drop and j not in drop and _overlap(fps[i], fps[j]) > 0.5:
            drop.add(j)
    return [f for k, f in enumerate(fps) if k not in drop]


def build_footprints(blocks: list[Block], rng: np.random.Generator) -> list[Footprint]:
    """Footprints for every block, in block order; no two footprints overlap.

    The total is balanced into [MIN_BUILDINGS, MAX_BUILDINGS]: parks are built on while there
    are too few buildings, accessory buildings thinned out while there are too many.
    """
    per_block = {b.index: _block_footprints(b, rng) for b in blocks}
    total = sum(len(v) for v in per_block.values())
    parks = [b for b in blocks if b.typology == lt.PARK and b.polygon.area >= 3000.0]
    for k in rng.permutation(len(parks)):
        if total >= MIN_BUILDINGS:
            break
        block = parks[int(k)]
        block.typology = lt.draw_typology(block.zone, block.polygon.area, rng, (lt.PARK,))
        total -= len(per_block[block.index])
        per_block[block.index] = _block_footprints(block, rng)
        total += len(per_block[block.index])
    out = _no_overlaps([f for b in blocks for f in per_block[b.index]])
    target = int(rng.integers(MAX_BUILDINGS - 100, MAX_BUILDINGS + 1))
    if len(out) > target:
        optional = [i for i, f in enumerate(out) if f.kind in _OPTIONAL]
        excess = min(len(out) - target, len(optional))
        drop = set(rng.choice(optional, size=excess, replace=False).tolist())
        out = [f for i, f in enumerate(out) if i not in drop]
    return out
