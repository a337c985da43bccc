"""Trees of the demo district: street trees along the pavements, trees in courtyards, gardens
and parks. Positions in EPSG:25832 metres, heights 8-20 m, round crowns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.ops import unary_union

from cut_processes.demo import layout as lt
from cut_processes.demo.buildings import Building
from cut_processes.demo.layout import Block
from cut_processes.demo.streets import SERVICE, Street

# Trees per m² of open (unbuilt) land, by block typology.
_DENSITY = {
    lt.PARK: 1 / 160.0,
    lt.HOUSES: 1 / 280.0,
    lt.POSTWAR: 1 / 260.0,
    lt.GRUENDERZEIT: 1 / 420.0,
    lt.INTERWAR_RING: 1 / 300.0,
    lt.MODERN_RING: 1 / 380.0,
    lt.MODERN_OPEN: 1 / 450.0,
    lt.SCHOOL: 1 / 450.0,
    lt.INDUSTRIAL: 1 / 2500.0,
}


@dataclass
class Trees:
    """Tree positions (m), heights (m) and crown radii (m) as parallel arrays."""

    x: np.ndarray
    y: np.ndarray
    height: np.ndarray
    radius: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)


def _street_trees(streets: list[Street], rng: np.random.Generator) -> list[np.ndarray]:
    rows = []
    for s in streets:
        avenue = s.name.endswith(("allee", "chaussee"))
        if s.road_class == SERVICE or not (avenue or rng.random() < 0.55):
            continue
        line = s.geometry
        spacing = rng.uniform(9.0, 14.0)
        dist = np.arange(rng.uniform(4.0, 10.0), line.length - 4.0, spacing)
        if dist.size == 0:
            continue
        here = shapely.line_interpolate_point(line, dist)
        ahead = shapely.line_interpolate_point(line, dist + 0.5)
        p = shapely.get_coordinates(here)
        q = shapely.get_coordinates(ahead)
        tangent = q - p
        tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
        normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
        offset = s.width / 2.0 + rng.uniform(1.2, 2.2)
        lo, hi = (12.0, 20.0) if avenue else (8.0, 16.0)
        for side in (1.0, -1.0):
            keep = rng.random(dist.size) > 0.12  # gaps: driveways, dead trees
            xy = p + side * offset * normal
            h = rng.uniform(lo, hi, dist.size)
            rows.append(np.column_stack([xy, h, h * rng.uniform(0.2, 0.3, dist.size)])[keep])
    return rows


def _open_land_trees(
    blocks: list[Block], buildings: list[Building], rng: np.random.Generator
) -> list[np.ndarray]:
    tree = shapely.STRtree([b.polygon for b in buildings])
    rows = []
    for block in blocks:
        density = _DENSITY.get(block.typology, 1 / 500.0)
        idx = tree.query(block.polygon, predicate="intersects")
        built = unary_union([buildings[i].polygon for i in idx]) if len(idx) else None
        land = block.polygon.buffer(-2.0)
        if built is not None:
            land = land.difference(built.buffer(3.0))
        if land.is_empty:
            continue
        n = int(rng.poisson(land.area * density))
        if n == 0:
            continue
        minx, miny, maxx, maxy = land.bounds
        cand = np.column_stack(
            [rng.uniform(minx, maxx, 4 * n + 8), rng.uniform(miny, maxy, 4 * n + 8)]
        )
        shapely.prepare(land)
        inside = cand[shapely.contains_xy(land, cand[:, 0], cand[:, 1])][:n]
        h = rng.uniform(8.0, 20.0, len(inside))
        rows.append(np.column_stack([inside, h, h * rng.uniform(0.22, 0.34, len(inside))]))
    return rows


def place_trees(
    streets: list[Street],
    blocks: list[Block],
    buildings: list[Building],
    rng: np.random.Generator,
) -> Trees:
    """Street, courtyard, garden and park trees.

    None stands on a carriageway or closer to a building than 0.7 crown radii.
    """
    rows = _street_trees(streets, rng) + _open_land_trees(blocks, buildings, rng)
    data = np.concatenate([r for r in rows if len(r)]) if rows else np.zeros((0, 4))
    points = shapely.points(data[:, 0], data[:, 1])
    carriageways = unary_union(
        [s.geometry.buffer(s.width / 2.0 + 0.5, cap_style="flat") for s in streets]
    )
    shapely.prepare(carriageways)
    bad = shapely.contains_xy(carriageways, data[:, 0], data[:, 1])
    clearance = np.round(data[:, 3] * 0.7, 0)
    tree = shapely.STRtree([b.polygon for b in buildings])
    for distance in np.unique(clearance):
        sel = np.flatnonzero(clearance == distance)
        hits, _ = tree.query(points[sel], predicate="dwithin", distance=float(distance))
        bad[sel[np.unique(hits)]] = True
    data = data[~bad]
    return Trees(data[:, 0], data[:, 1], data[:, 2], data[:, 3])
