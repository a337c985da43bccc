"""Building attributes: function, roof, year, storeys and heights, with hidden truth.

Heights follow from a storey programme: a ground floor (taller with a shop front), upper
storeys of an era-typical height, a parapet or knee wall, and for pitched roofs a roof whose
height follows from the building depth and roof pitch. Steep, high roofs often hold an attic
storey that counts in ``storeys``. Published heights carry up to ±0.3 m measurement noise.
All heights are metres above ground.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import Polygon

from cut_processes.demo import codes
from cut_processes.demo import footprints as fp
from cut_processes.demo.footprints import Footprint
from cut_processes.demo.layout import Block
from cut_processes.demo.programmes import draw_function, draw_programme
from cut_processes.demo.streets import PRIMARY, RESIDENTIAL, SECONDARY, Street

#: Share of buildings whose storey count is published as null.
HIDDEN_STOREYS_SHARE = 1.0 / 3.0

_SHOP_CHANCE = {PRIMARY: 0.6, SECONDARY: 0.45, RESIDENTIAL: 0.1}
_SHOP_KINDS = {fp.GZ_ROW: 1.0, fp.MODERN: 0.9, fp.INTERWAR: 0.4, fp.POSTWAR_SLAB: 0.2}


@dataclass
class Building:
    """A generated building: published attributes plus the hidden truth behind them."""

    polygon: Polygon
    kind: str
    era: str
    district: str
    function: str
    roof_type: str
    year_built: int
    storeys: int  # true number of storeys above ground (including an attic storey)
    storey_height: float  # typical upper storey height (m)
    ground_floor_height: float  # (m)
    has_attic_storey: bool
    has_shop_front: bool
    roof_height: float  # true height of the roof above the eaves (m)
    eaves_height: float  # published, with measurement noise (m)
    measured_height: float  # published, with measurement noise (m)
    depth: float  # building depth (m)
    street_class: str | None  # class of the street the building faces, if any
    frontage: float  # length of the (street) facade (m)
    id: str = ""
    storeys_published: int | None = None
    facade_image: str | None = None

    @property
    def function_name(self) -> str:
        return codes.FUNCTIONS[self.function]

    def properties(self, source: str) -> dict:
        """The published attributes (names and order of the ``buildings`` layer)."""
        return {
            "id": self.id,
            "function": self.function,
            "function_name": self.function_name,
            "roof_type": self.roof_type,
            "measured_height": self.measured_height,
            "eaves_height": self.eaves_height,
            "storeys": self.storeys_published,
            "year_built": self.year_built,
            "facade_image": self.facade_image,
            "district": self.district,
            "footprint_area": round(float(self.polygon.area), 2),
            "source": source,
        }

    def truth(self) -> dict:
        """The hidden truth (``buildings_truth`` layer)."""
        return {
            "id": self.id,
            "storeys": self.storeys,
            "storey_height": self.storey_height,
            "ground_floor_height": self.ground_floor_height,
            "has_attic_storey": self.has_attic_storey,
            "has_shop_front": self.has_shop_front,
            "roof_height": self.roof_height,
            "building_type": self.kind,
            "era": self.era,
        }


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _roof_height(roof: str, depth: float, pitch: float, rng: np.random.Generator) -> float:
    """Height (m) of the roof above the eaves for a building ``depth`` metres deep."""
    slope = np.tan(np.radians(pitch))
    if roof == codes.FLAT:
        return 0.0
    if roof in (codes.GABLE, codes.HIP, codes.HALF_HIP, codes.TENT):
        return float(min(depth / 2.0 * slope, 9.5))
    if roof == codes.MANSARD:
        return _u(rng, 4.0, 5.8)
    if roof == codes.MONO_PITCH:
        return float(min(depth * slope, 4.0))
    if roof == codes.SAWTOOTH:
        return _u(rng, 2.0, 3.5)
    return float(depth / 2.0 * rng.uniform(0.25, 0.4))  # ARCH


def _attic_probability(roof: str, roof_height: float) -> float:
    """Chance that a pitched roof of ``roof_height`` m holds a full attic storey."""
    if roof not in codes.PITCHED_WITH_ATTIC:
        return 0.0
    p = (roof_height - 3.0) / 2.5
    if roof == codes.MANSARD:
        p += 0.35
    return float(np.clip(p, 0.0, 0.93))


def _noise(rng: np.random.Generator) -> float:
    """Measurement noise (m): normal, sigma 0.15 m, clipped to ±0.3 m."""
    return float(np.clip(rng.normal(0.0, 0.15), -0.3, 0.3))


def _street_context(
    footprints: list[Footprint], streets: list[Street]
) -> list[tuple[str | None, float]]:
    """(class of the street a footprint faces or None, facade length in m) per footprint."""
    lines = [s.geometry for s in streets]
    tree = shapely.STRtree(lines)
    polys = [f.polygon for f in footprints]
    (src, dst), dist = tree.query_nearest(polys, return_distance=True, all_matches=False)
    out: list[tuple[str | None, float]] = []
    for i, j, d in zip(src.tolist(), dst.tolist(), dist.tolist(), strict=True):
        street, poly = streets[j], polys[i]
        env = np.asarray(shapely.oriented_envelope(poly).exterior.coords)
        sides = np.hypot(*np.diff(env[:3], axis=0).T)
        if d <= street.corridor / 2.0 + 1.0:
            band = street.geometry.buffer(street.corridor / 2.0 + 0.5, cap_style="flat")
            frontage = float(poly.exterior.intersection(band).length)
            out.append((street.road_class, max(frontage, float(sides.min()))))
        else:
            out.append((None, float(sides.max())))
    return out


def build_buildings(
    footprints: list[Footprint],
    blocks: list[Block],
    streets: list[Street],
    rng: np.random.Generator,
) -> list[Building]:
    """Attributes for every footprint; ids ``DEHH_DEMO_000001``... in footprint order."""
    context = _street_context(footprints, streets)
    buildings = []
    for i, (f, (street_class, frontage)) in enumerate(zip(footprints, context, strict=True)):
        prog = draw_programme(f.kind, rng)
        shop_kind = _SHOP_KINDS.get(f.kind, 0.0)
        shop = street_class is not None and rng.random() < shop_kind * _SHOP_CHANCE.get(
            street_class, 0.0
        )
        roof_h = _roof_height(prog.roof, f.depth, prog.pitch, rng)
        if prog.total_height is not None:  # halls and gyms: overall height given
            roof_h = min(roof_h, prog.total_height - 4.5)
            top = _u(rng, 0.3, 0.8)
            eaves = prog.total_height - roof_h
            storey_h = (eaves - top) / prog.n_full
            ground_h = storey_h
        else:
            storey_h = prog.storey_height
            if shop:
                ground_h = _u(rng, 3.6, 4.5)
            elif prog.era == "gruenderzeit" and prog.n_full > 2:
                ground_h = storey_h + _u(rng, 0.0, 0.4)  # raised ground floor (Hochparterre)
            else:
                ground_h = storey_h + _u(rng, 0.0, 0.25)
            top = _u(rng, 0.5, 1.2) if prog.roof == codes.FLAT else _u(rng, 0.2, 0.9)
            eaves = ground_h + (prog.n_full - 1) * storey_h + top
        attic = prog.attic_allowed and rng.random() < _attic_probability(prog.roof, roof_h)
        measured = round(eaves + roof_h + _noise(rng), 2)
        if prog.roof == codes.FLAT:
            eaves_pub = measured
        else:
            eaves_pub = min(round(eaves + _noise(rng), 2), measured)
        buildings.append(
            Building(
                polygon=f.polygon,
                kind=f.kind,
                era=prog.era,
                district=blocks[f.block].district,
                function=draw_function(f.kind, prog, shop, rng),
                roof_type=prog.roof,
                year_built=prog.year,
                storeys=prog.n_full + int(attic),
                storey_height=round(storey_h, 2),
                ground_floor_height=round(ground_h, 2),
                has_attic_storey=bool(attic),
                has_shop_front=bool(shop),
                roof_height=round(roof_h, 2),
                eaves_height=eaves_pub,
                measured_height=measured,
                depth=round(f.depth, 2),
                street_class=street_class,
                frontage=round(frontage, 2),
                id=f"DEHH_DEMO_{i + 1:06d}",
            )
        )
    n = len(buildings)
    hidden = set(rng.choice(n, size=round(n * HIDDEN_STOREYS_SHARE), replace=False).tolist())
    for i, b in enumerate(buildings):
        b.storeys_published = None if i in hidden else b.storeys
    return buildings
