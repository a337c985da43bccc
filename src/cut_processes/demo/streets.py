"""Street network of the demo district: a jittered grid plus a curved and a diagonal street.

Every street is a centre line (EPSG:25832 metres) with an invented German name, a road class,
a lane count, a carriageway width and a corridor width (building line to building line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shapely import LineString

from cut_processes.demo.constants import XMAX, XMIN, YMAX, YMIN
from cut_processes.demo.terrain import Terrain

PRIMARY, SECONDARY, RESIDENTIAL, SERVICE = "primary", "secondary", "residential", "service"

# Invented name stems (trees, crafts, birds, landscape, Low German family names); none is a
# street name of the real Ottensen.
_STEMS = (
    "Linden",
    "Eschen",
    "Ulmen",
    "Birken",
    "Erlen",
    "Holunder",
    "Rosen",
    "Flieder",
    "Ahorn",
    "Kastanien",
    "Weiden",
    "Pappel",
    "Buchen",
    "Eichen",
    "Hasel",
    "Schlehen",
    "Lärchen",
    "Böttcher",
    "Seiler",
    "Reeper",
    "Segelmacher",
    "Kupferschmiede",
    "Ziegel",
    "Glaser",
    "Drechsler",
    "Tuchmacher",
    "Netzmacher",
    "Küper",
    "Zimmerer",
    "Möwen",
    "Kranich",
    "Reiher",
    "Lerchen",
    "Falken",
    "Schwalben",
    "Kormoran",
    "Heide",
    "Moor",
    "Sand",
    "Deich",
    "Strand",
    "Geest",
    "Fährhaus",
    "Lotsen",
    "Speicher",
    "Kontor",
    "Kirchen",
    "Schul",
    "Mühlen",
    "Wiesen",
    "Garten",
    "Koppel",
    "Anger",
    "Kiebitz",
    "Dohlen",
    "Ewer",
    "Jollen",
    "Kutter",
    "Hinrichsen",
    "Brodersen",
    "Thormählen",
    "Jürgensen",
    "Ketelsen",
    "Paulsen",
    "Harmsen",
    "Lüders",
    "Wulff",
    "Claasen",
    "Mommsen",
    "Tiedemann",
    "Brook",
    "Hecken",
    "Tannen",
    "Quitten",
    "Hopfen",
    "Malz",
    "Kalk",
    "Teer",
    "Tau",
    "Anker",
    "Steuermann",
    "Fischer",
    "Krabben",
)
_SUFFIXES = {
    PRIMARY: (("allee", 0.4), ("chaussee", 0.3), ("damm", 0.3)),
    SECONDARY: (("straße", 0.6), ("allee", 0.15), ("damm", 0.15), ("weg", 0.1)),
    RESIDENTIAL: (
        ("straße", 0.45),
        ("weg", 0.15),
        ("twiete", 0.1),
        ("stieg", 0.1),
        ("kamp", 0.08),
        ("reihe", 0.07),
        ("gang", 0.05),
    ),
    SERVICE: (("hof", 0.5), ("gang", 0.3), ("twiete", 0.2)),
}
_AM = ("hof", "teich", "platz", "brook", "hang", "kai")


@dataclass
class Street:
    """One street centre line; lengths in metres."""

    geometry: LineString
    name: str
    road_class: str
    lanes: int
    width: float  # carriageway width
    corridor: float  # street space between the building lines (carriageway, parking, pavements)


class StreetNamer:
    """Hands out unique invented street names, deterministic for a given ``rng``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._stems = [_STEMS[i] for i in rng.permutation(len(_STEMS))]
        self._used: set[str] = set()

    def name(self, road_class: str) -> str:
        """A new unused name suited to ``road_class``."""
        while True:
            stem = self._stems.pop() if self._stems else self._fallback_stem()
            if road_class in (RESIDENTIAL, SERVICE) and self._rng.random() < 0.12:
                name = f"Am {stem}{_AM[self._rng.integers(len(_AM))]}"
            else:
                suffixes, weights = zip(*_SUFFIXES[road_class], strict=True)
                suffix = suffixes[self._rng.choice(len(suffixes), p=np.array(weights))]
                name = stem + suffix
            if name not in self._used:
                self._used.add(name)
                return name

    def _fallback_stem(self) -> str:
        a, b = self._rng.choice(len(_STEMS), size=2, replace=False)
        return _STEMS[a] + _STEMS[b].lower()


def _profile(road_class: str, rng: np.random.Generator) -> tuple[int, float, float]:
    """Lanes, carriageway width (m) and corridor width (m) of a street of ``road_class``."""
    if road_class == PRIMARY:
        lanes, width, side = 4, rng.uniform(14.0, 16.5), rng.uniform(5.0, 7.0)
    elif road_class == SECONDARY:
        lanes, width, side = 2, rng.uniform(8.0, 10.0), rng.uniform(4.0, 5.5)
    elif road_class == RESIDENTIAL:
        if rng.random() < 0.25:
            lanes, width = 1, rng.uniform(3.5, 4.5)
        else:
            lanes, width = 2, rng.uniform(5.5, 7.0)
        side = rng.uniform(3.5, 5.0)
    else:
        lanes, width, side = 1, rng.uniform(3.5, 4.5), rng.uniform(1.0, 2.0)
    width = round(float(width), 1)
    return lanes, width, round(width + 2.0 * float(side), 1)


def make_street(
    line: LineString, road_class: str, namer: StreetNamer, rng: np.random.Generator
) -> Street:
    """A street of ``road_class`` along ``line`` with a fresh name and a drawn profile."""
    lanes, width, corridor = _profile(road_class, rng)
    coords = np.round(np.asarray(line.coords), 2)
    return Street(LineString(coords), namer.name(road_class), road_class, lanes, width, corridor)


def _positions(start: float, stop: float, lo: float, hi: float, rng: np.random.Generator):
    """Jittered positions from ``start`` while below ``stop``, spacing in [lo, hi] metres."""
    out, pos = [], start
    while pos < stop:
        out.append(float(pos))
        pos += rng.uniform(lo, hi)
    return out


def _runs(breaks: list[float], keep: np.ndarray) -> list[tuple[float, float]]:
    """Maximal runs of kept consecutive intervals between ``breaks``."""
    runs, begin = [], None
    for i, k in enumerate(keep):
        if k and begin is None:
            begin = breaks[i]
        if not k and begin is not None:
            runs.append((begin, breaks[i]))
            begin = None
    if begin is not None:
        runs.append((begin, breaks[-1]))
    return runs


@dataclass
class StreetGrid:
    """The generated network and the lines that structure the district into quarters."""

    streets: list[Street]
    primary_x: float  # easting of the north-south main road
    primary_y: float  # northing of the east-west main road
    first_row_y: float  # northing of the southernmost straight east-west street
    namer: StreetNamer


def build_streets(terrain: Terrain, rng: np.random.Generator) -> StreetGrid:
    """Generate the street network for ``terrain`` (the curved street follows the Elbhang)."""
    namer = StreetNamer(rng)
    hang_top = YMIN + terrain.hang_offset + terrain.hang_amplitude
    first_row_y = hang_top + rng.uniform(120.0, 160.0)
    xs = _positions(XMIN + rng.uniform(90.0, 150.0), XMAX - 90.0, 165.0, 235.0, rng)
    ys = _positions(first_row_y, YMAX - 70.0, 125.0, 185.0, rng)
    ip = int(np.argmin([abs(x - (XMIN + 1200.0)) for x in xs]))
    jp = int(np.argmin([abs(y - (YMIN + 1250.0)) for y in ys]))
    sec_x = {i for i in range(len(xs)) if i != ip and abs(i - ip) % 3 == 0}
    sec_y = {j for j in range(len(ys)) if j != jp and abs(j - jp) % 3 == 0}

    streets: list[Street] = []
    # Curved street along the slope and a straight quay road at the harbour.
    curve_x = np.linspace(XMIN, XMAX, 126)
    curve = LineString(np.column_stack([curve_x, terrain.hang_line(curve_x)]))
    streets.append(make_street(curve, SECONDARY, namer, rng))
    quay_y = YMIN + rng.uniform(70.0, 100.0)
    streets.append(make_street(LineString([(XMIN, quay_y), (XMAX, quay_y)]), SECONDARY, namer, rng))

    # North-south streets: main ones run to the quay, residential ones stop at the curve.
    for i, x in enumerate(xs):
        cls = PRIMARY if i == ip else SECONDARY if i in sec_x else RESIDENTIAL
        south = quay_y if cls != RESIDENTIAL else float(terrain.hang_line(x))
        breaks = [south, *[y for y in ys if y > south], YMAX]
        keep = np.ones(len(breaks) - 1, dtype=bool)
        if cls == RESIDENTIAL:
            keep = rng.random(len(keep)) > 0.1
        for a, b in _runs(breaks, keep):
            streets.append(make_street(LineString([(x, a), (x, b)]), cls, namer, rng))
    # East-west streets.
    for j, y in enumerate(ys):
        cls = PRIMARY if j == jp else SECONDARY if j in sec_y else RESIDENTIAL
        breaks = [XMIN, *xs, XMAX]
        keep = np.ones(len(breaks) - 1, dtype=bool)
        if cls == RESIDENTIAL:
            keep = rng.random(len(keep)) > 0.1
        for a, b in _runs(breaks, keep):
            streets.append(make_street(LineString([(a, y), (b, y)]), cls, namer, rng))
    # An old country road crossing the western grid diagonally, with one bend.
    y0 = YMIN + rng.uniform(850.0, 1100.0)
    x1 = XMIN + rng.uniform(650.0, 950.0)
    mid = (
        XMIN + 0.5 * (x1 - XMIN) + rng.uniform(-40, 40),
        0.5 * (y0 + YMAX) + rng.uniform(-40, 40),
    )
    diagonal = LineString([(XMIN, y0), mid, (x1, YMAX)])
    streets.append(make_street(diagonal, SECONDARY, namer, rng))
    return StreetGrid(streets, xs[ip], ys[jp], first_row_y, namer)
