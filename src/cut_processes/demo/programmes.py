"""Rules per building kind: era, year built, roof form and pitch, storeys, storey height, use.

Each kind has one or more variants (e.g. a Gründerzeit parcel may carry its original house, a
post-war or a modern replacement). A variant is drawn by its share; then every property is
drawn from the variant's ranges and weights. Heights in metres, pitches in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cut_processes.demo import codes
from cut_processes.demo import footprints as fp

F, MONO, GABLE, HIP = codes.FLAT, codes.MONO_PITCH, codes.GABLE, codes.HIP
HALF, MANS, TENT, SAW, ARCH = codes.HALF_HIP, codes.MANSARD, codes.TENT, codes.SAWTOOTH, codes.ARCH

# Pitches of low-slope roofs, whatever the variant.
_PITCH_OVERRIDES = {MONO: (5.0, 14.0), TENT: (25.0, 35.0)}


@dataclass(frozen=True)
class Variant:
    """One way a building of a kind can be (ranges are inclusive bounds)."""

    share: float
    era: str
    years: tuple[int, int]
    roofs: dict[str, float]  # AdV roof code -> weight
    storeys: dict[int, float]  # storeys below the eaves -> weight
    storey_height: tuple[float, float] = (0.0, 0.0)
    pitch: tuple[float, float] = (30.0, 45.0)
    function: str = ""  # fixed ALKIS function; "" = drawn from use (see _USES)
    total_height: dict[int, tuple[float, float]] | None = None  # overall height by storeys
    flat_storeys: dict[int, float] | None = None  # storeys if the roof is flat
    attic: bool = True  # may a pitched roof hold an attic storey


def _v(share: float, era: str, years: tuple[int, int], **kw: object) -> Variant:
    return Variant(share, era, years, **kw)


VARIANTS: dict[str, tuple[Variant, ...]] = {
    fp.GZ_ROW: (
        _v(0.75, "gruenderzeit", (1870, 1914), roofs={GABLE: 0.32, MANS: 0.25, F: 0.3, HIP: 0.13},
           storeys={3: 0.08, 4: 0.37, 5: 0.4, 6: 0.15}, storey_height=(3.2, 3.8), pitch=(35, 48)),
        _v(0.17, "postwar", (1950, 1975), roofs={F: 0.7, GABLE: 0.3},
           storeys={4: 0.3, 5: 0.45, 6: 0.25}, storey_height=(2.7, 3.0), pitch=(22, 32)),
        _v(0.08, "modern", (1990, 2023), roofs={F: 0.85, MONO: 0.15},
           storeys={5: 0.4, 6: 0.4, 7: 0.2}, storey_height=(2.9, 3.3)),
    ),
    fp.INTERWAR: (
        _v(1.0, "interwar", (1920, 1939), roofs={F: 0.4, HIP: 0.45, GABLE: 0.15},
           storeys={3: 0.2, 4: 0.5, 5: 0.3}, storey_height=(2.9, 3.3), pitch=(30, 45)),
    ),
    fp.POSTWAR_SLAB: (
        _v(1.0, "postwar", (1950, 1975), roofs={GABLE: 0.5, F: 0.45, HIP: 0.05},
           storeys={2: 0.05, 3: 0.3, 4: 0.35, 5: 0.12, 6: 0.06, 7: 0.06, 8: 0.06},
           storey_height=(2.7, 3.0), pitch=(20, 32)),
    ),
    fp.TOWER: (
        _v(0.6, "postwar", (1962, 1976), roofs={F: 1.0},
           storeys={9: 0.25, 10: 0.25, 11: 0.25, 12: 0.25}, storey_height=(2.75, 3.0)),
        _v(0.4, "modern", (1995, 2023), roofs={F: 1.0},
           storeys={9: 0.25, 10: 0.25, 11: 0.25, 12: 0.25}, storey_height=(2.9, 3.2)),
    ),
    fp.MODERN: (
        _v(1.0, "modern", (1990, 2023), roofs={F: 0.85, MONO: 0.15},
           storeys={3: 0.1, 4: 0.25, 5: 0.3, 6: 0.25, 7: 0.1}, storey_height=(2.9, 3.3)),
    ),
    fp.OFFICE: (
        _v(0.6, "modern", (1990, 2023), roofs={F: 1.0},
           storeys={2: 0.2, 3: 0.35, 4: 0.3, 5: 0.15}, storey_height=(3.3, 3.8)),
        _v(0.4, "postwar", (1960, 1989), roofs={F: 1.0},
           storeys={2: 0.2, 3: 0.35, 4: 0.3, 5: 0.15}, storey_height=(3.2, 3.6)),
    ),
    fp.HOUSE: (
        _v(0.2, "interwar", (1925, 1939), roofs={GABLE: 0.45, HIP: 0.3, HALF: 0.15, MANS: 0.1},
           storeys={1: 0.45, 2: 0.55}, storey_height=(2.8, 3.1), pitch=(35, 50),
           function="31001_1010"),
        _v(0.35, "postwar", (1950, 1975),
           roofs={GABLE: 0.55, HIP: 0.15, F: 0.1, TENT: 0.1, HALF: 0.1},
           storeys={1: 0.45, 2: 0.55}, storey_height=(2.6, 2.9), pitch=(30, 48),
           function="31001_1010", flat_storeys={2: 0.7, 3: 0.3}),
        _v(0.15, "late_20th", (1976, 1995), roofs={GABLE: 0.5, HALF: 0.2, HIP: 0.15, TENT: 0.15},
           storeys={1: 0.45, 2: 0.55}, storey_height=(2.7, 3.0), pitch=(30, 48),
           function="31001_1010"),
        _v(0.3, "modern", (1996, 2023),
           roofs={GABLE: 0.35, F: 0.3, TENT: 0.15, HIP: 0.1, MONO: 0.1},
           storeys={1: 0.45, 2: 0.55}, storey_height=(2.7, 3.0), pitch=(30, 48),
           function="31001_1010", flat_storeys={2: 0.7, 3: 0.3}),
    ),
    fp.VILLA: (
        _v(1.0, "gruenderzeit", (1880, 1914),
           roofs={HIP: 0.35, MANS: 0.25, GABLE: 0.2, HALF: 0.1, TENT: 0.1},
           storeys={2: 0.75, 3: 0.25}, storey_height=(3.2, 3.7), pitch=(35, 50)),
    ),
    fp.TERRACE: (
        _v(1.0, "gruenderzeit", (1870, 1910), roofs={GABLE: 0.8, F: 0.2},
           storeys={1: 0.35, 2: 0.65}, storey_height=(2.6, 2.9), pitch=(38, 48),
           function="31001_1010"),
    ),
    fp.WORKSHOP: (
        _v(0.5, "gruenderzeit", (1880, 1914), roofs={F: 0.45, MONO: 0.3, GABLE: 0.25},
           storeys={1: 0.6, 2: 0.3, 3: 0.1}, storey_height=(3.2, 4.5), pitch=(20, 35),
           attic=False),
        _v(0.5, "postwar", (1950, 1990), roofs={F: 0.45, MONO: 0.3, GABLE: 0.25},
           storeys={1: 0.6, 2: 0.3, 3: 0.1}, storey_height=(3.2, 4.5), pitch=(20, 35),
           attic=False),
    ),
    fp.GARAGE: (
        _v(1.0, "postwar", (1955, 1995), roofs={F: 1.0}, storeys={1: 1.0},
           storey_height=(2.3, 2.7), function="31001_2463", attic=False),
    ),
    fp.HALL: (
        _v(0.25, "gruenderzeit", (1890, 1914), roofs={SAW: 0.55, GABLE: 0.25, F: 0.2},
           storeys={1: 0.75, 2: 0.25}, pitch=(8, 20),
           total_height={1: (5.0, 9.5), 2: (7.8, 10.0)}, attic=False),
        _v(0.4, "postwar", (1950, 1990), roofs={F: 0.6, MONO: 0.15, GABLE: 0.15, SAW: 0.1},
           storeys={1: 0.75, 2: 0.25}, pitch=(8, 20),
           total_height={1: (5.0, 9.5), 2: (7.8, 10.0)}, attic=False),
        _v(0.35, "modern", (1991, 2020), roofs={F: 0.6, MONO: 0.15, GABLE: 0.15, SAW: 0.1},
           storeys={1: 0.75, 2: 0.25}, pitch=(8, 20),
           total_height={1: (5.0, 9.5), 2: (7.8, 10.0)}, attic=False),
    ),
    fp.SCHOOL_BUILDING: (
        _v(0.4, "gruenderzeit", (1895, 1914), roofs={HIP: 0.45, GABLE: 0.3, MANS: 0.25},
           storeys={3: 0.6, 4: 0.4}, storey_height=(3.8, 4.2), pitch=(35, 45),
           function="31001_3021"),
        _v(0.4, "postwar", (1955, 1975), roofs={F: 0.85, MONO: 0.15},
           storeys={2: 0.5, 3: 0.5}, storey_height=(3.3, 3.6), function="31001_3021"),
        _v(0.2, "modern", (2000, 2023), roofs={F: 0.85, MONO: 0.15},
           storeys={3: 0.6, 4: 0.4}, storey_height=(3.4, 3.8), function="31001_3021"),
    ),
    fp.GYM: (
        _v(0.5, "postwar", (1960, 1989), roofs={F: 0.6, ARCH: 0.4}, storeys={1: 1.0},
           total_height={1: (7.0, 9.5)}, function="31001_3211", attic=False),
        _v(0.5, "modern", (1990, 2020), roofs={F: 0.6, ARCH: 0.4}, storeys={1: 1.0},
           total_height={1: (7.0, 9.5)}, function="31001_3211", attic=False),
    ),
    fp.KITA: (
        _v(1.0, "modern", (1970, 2023), roofs={F: 0.5, MONO: 0.3, GABLE: 0.2},
           storeys={1: 0.6, 2: 0.4}, storey_height=(3.0, 3.4), pitch=(25, 40),
           function="31001_3065", attic=False),
    ),
    fp.PAVILION: (
        _v(1.0, "postwar", (1950, 2010), roofs={F: 0.6, TENT: 0.4}, storeys={1: 1.0},
           storey_height=(3.0, 3.8), function="31001_3000", attic=False),
    ),
}  # fmt: skip

# ALKIS function (without the 31001_ prefix) -> weight, by kind, without and with shop front.
_USES: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    fp.GZ_ROW: ({"1000": 0.55, "1010": 0.45}, {"1123": 0.4, "1120": 0.35, "1100": 0.25}),
    fp.INTERWAR: ({"1000": 0.85, "1010": 0.15}, {"1123": 0.4, "1120": 0.35, "1100": 0.25}),
    fp.POSTWAR_SLAB: (
        {"1000": 0.6, "1010": 0.3, "1020": 0.1},
        {"1123": 0.4, "1120": 0.35, "1100": 0.25},
    ),
    fp.MODERN: (
        {"1000": 0.45, "1100": 0.15, "2020": 0.3, "1020": 0.1},
        {"1123": 0.4, "1100": 0.35, "2050": 0.25},
    ),
    fp.TOWER: ({"1000": 0.7, "1020": 0.15, "2020": 0.15}, {}),
    fp.OFFICE: ({"2020": 0.75, "2000": 0.25}, {}),
    fp.VILLA: ({"1010": 0.8, "1000": 0.2}, {}),
    fp.WORKSHOP: ({"2120": 0.5, "2000": 0.3, "2100": 0.2}, {}),
    fp.HALL: ({"2100": 0.3, "2143": 0.25, "2111": 0.1, "2000": 0.15, "2050": 0.2}, {}),
}


def pick(rng: np.random.Generator, options: dict) -> object:
    """A key of ``options`` drawn with the values as weights."""
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


@dataclass
class Programme:
    """What one building is (heights in metres, pitch in degrees)."""

    era: str
    year: int
    roof: str
    n_full: int  # storeys below the eaves
    storey_height: float  # 0 when total_height is given
    pitch: float
    total_height: float | None  # overall height (halls, gyms), else None
    attic_allowed: bool
    function: str  # "" until the use is known


def draw_programme(kind: str, rng: np.random.Generator) -> Programme:
    """Draw the programme of a building of ``kind``."""
    variants = VARIANTS[kind]
    v = variants[int(rng.choice(len(variants), p=np.array([x.share for x in variants])))]
    roof = str(pick(rng, v.roofs))
    storeys = v.flat_storeys if (roof == F and v.flat_storeys) else v.storeys
    n_full = int(pick(rng, storeys))
    pitch = float(rng.uniform(*_PITCH_OVERRIDES.get(roof, v.pitch)))
    total = float(rng.uniform(*v.total_height[n_full])) if v.total_height else None
    storey_h = float(rng.uniform(*v.storey_height)) if total is None else 0.0
    year = int(rng.integers(v.years[0], v.years[1] + 1))
    return Programme(v.era, year, roof, n_full, storey_h, pitch, total, v.attic, v.function)


def draw_function(kind: str, programme: Programme, shop: bool, rng: np.random.Generator) -> str:
    """The ALKIS function code (``31001_xxxx``) of the building."""
    if programme.function:
        return programme.function
    plain, with_shop = _USES.get(kind, ({"1010": 1.0}, {}))
    return f"31001_{pick(rng, with_shop if shop and with_shop else plain)}"
