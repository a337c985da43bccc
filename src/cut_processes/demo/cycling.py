"""Generated cycling data of the demo district, for the ``cycling-volumes`` process.

Everything here is **generated** and labelled so (``source`` on every feature); nothing is a
measurement from Hamburg. What is written into ``district.gpkg``:

* ``bike_segments``: the street network split at every junction (long pieces further into
  equal parts of at most 250 m), one LineString per segment and crowdsourced week, in the
  fields of the DB Rad+ importer (:data:`cut_processes.io.dbrad.FIELDS`) plus the street's
  ``name`` and ``road_class``. ``rides`` = a negative-binomial draw around the segment's true
  cyclists of the week times an app share (3–6 %, by road class, by the week's weather and
  a little by segment);
* ``bike_routes``: an official route network like Hamburg's Velorouten (``routennummer``,
  ``name``, ``status``, ``richtung``) on the segments of two cycling axes;
* ``bike_stations``: counting stations placed a few metres beside a segment's centre line;
* ``bike_counts``: daily counts per station and direction, 2024-01-01..2025-12-31, with the
  day's generated weather, in the fields of :data:`cut_processes.io.counters.COUNT_FIELDS`;
* hidden truth (not served): ``bike_segments_truth`` (true mean daily cyclists per segment
  and week, the app share drawn, the two-year mean daily traffic, axis and route membership)
  and ``bike_truth`` (per station and day: the segment, the expected cyclists and the planted
  anomaly with its factor).

The model: each segment has a mean daily traffic over the two years (``dtv``): a base by
road class times a street factor and a segment factor, plus the traffic of the cycling axes
it lies on (continuous chains of segments found by shortest paths across the district).
Every day has a commuter profile and a leisure profile (weekday, Hamburg's public and school
holidays, season, weather), each with mean 1 over the two years; a segment's daily level is
``dtv`` times its mix of the two. A station counts the daily level of its segment, so the
mean of a station's expected counts over a crowdsourced week is that segment's truth of the
week, times the planted anomalies' factor.
"""

from __future__ import annotations

import heapq
import math
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import fiona
import numpy as np
from pyproj import Transformer
from shapely import LineString, MultiLineString, Point, STRtree, get_parts, line_merge
from shapely.ops import nearest_points, substring

from cut_processes.analysis.calendar_de import calendar_features
from cut_processes.demo.constants import CRS, XMAX, XMIN, YMAX, YMIN
from cut_processes.demo.streets import PRIMARY, RESIDENTIAL, SECONDARY, SERVICE, Street
from cut_processes.io.counters import COUNT_FIELDS
from cut_processes.io.counters import STATION_FIELDS as COUNTER_STATION_FIELDS
from cut_processes.io.dbrad import FIELDS as DBRAD_FIELDS
from cut_processes.io.dbrad import segment_id
from cut_processes.io.records import NO_GEOMETRY

# --- parameters ------------------------------------------------------------------------------

FEDERAL_STATE = "HH"
COUNT_START, COUNT_END = date(2024, 1, 1), date(2025, 12, 31)
#: First days (Mondays) of the crowdsourced weeks; each week runs Monday..Sunday.
WEEKS = (date(2025, 3, 10), date(2025, 6, 16), date(2025, 9, 15))

#: Mean daily cyclists (two-year mean) of a street by road class, before the axes.
BASE_DTV = {PRIMARY: 900.0, SECONDARY: 600.0, RESIDENTIAL: 180.0, SERVICE: 45.0}
#: Share of leisure trips by road class (the rest commutes).
LEISURE_SHARE = {PRIMARY: 0.15, SECONDARY: 0.2, RESIDENTIAL: 0.3, SERVICE: 0.45}
#: Share of cyclists recording their rides with the app, by road class (before the week's
#: weather factor and the segment's noise): app users favour quiet streets.
APP_SHARE = {PRIMARY: 0.035, SECONDARY: 0.042, RESIDENTIAL: 0.050, SERVICE: 0.054}
APP_SHARE_SEGMENT_SIGMA = 0.1  # log-normal spread per segment and week
DISPERSION_RIDES = 20.0  # negative binomial (gamma-Poisson) shape of weekly rides
DISPERSION_COUNTS = 50.0  # ... of daily counts

#: Weekday factors Monday..Sunday of commuter and leisure traffic.
WEEKDAY_COMMUTE = (1.10, 1.14, 1.14, 1.10, 1.00, 0.62, 0.52)
WEEKDAY_LEISURE = (0.80, 0.80, 0.82, 0.86, 1.00, 1.40, 1.52)

SNAP_M = 6.0  # a street ending this close to another one joins it
JOIN_M = 5.0  # junctions this close are one node
MAX_PIECE_M = 250.0
STATION_OFFSET_M = 4.0  # a counter stands beside the centre line


@dataclass(frozen=True)
class Axis:
    """A cycling axis: a continuous chain of segments with extra traffic."""

    key: str
    label: str
    volume: float  # extra mean daily cyclists (two-year mean), scaled 0.85..1.15 along it
    leisure: float  # leisure share of the axis traffic
    route: tuple[str, str, str] | None = None  # official route: (routennummer, name, status)


AXES = (
    Axis("A", "east-west axis (on the official route network)", 3600.0, 0.25,
         ("1", "Veloroute 1 (generiert)", "Hauptroute")),
    Axis("B", "north-south main road (not on the official route network)", 2800.0, 0.15),
    Axis("C", "diagonal old country road", 1500.0, 0.2),
    Axis("D", "Elbe quay (leisure)", 1600.0, 0.6),
    Axis("E", "north-south side route (moderate, official)", 800.0, 0.3,
         ("1a", "Veloroute 1a (generiert)", "Nebenroute")),
)  # fmt: skip

#: The counting stations: id, where it stands (an axis key, or a road class off the axes).
STATION_SITES = (
    ("DEMO_ZS_01", "A"),
    ("DEMO_ZS_02", "B"),
    ("DEMO_ZS_03", "D"),
    ("DEMO_ZS_04", "C"),
    ("DEMO_ZS_05", "E"),
    ("DEMO_ZS_06", RESIDENTIAL),
    ("DEMO_ZS_07", RESIDENTIAL),
    ("DEMO_ZS_08", PRIMARY),
)
#: Planted anomalies: (station, first day, last day, kind, factor); factor None = stuck counter
#: repeating the day before the run.
ANOMALIES = (
    ("DEMO_ZS_01", date(2024, 6, 9), date(2024, 6, 9), "surge", 3.2),
    ("DEMO_ZS_03", COUNT_START, date(2024, 6, 30), "level_shift", 0.5),  # loop doubled
    ("DEMO_ZS_04", date(2024, 8, 19), date(2024, 10, 27), "drop", 0.4),  # traffic diverted
    ("DEMO_ZS_06", date(2024, 11, 4), date(2024, 11, 22), "outage", 0.0),
    ("DEMO_ZS_06", date(2025, 2, 10), date(2025, 2, 21), "outage", None),
)
STATION_NOTES = {
    "DEMO_ZS_03": (
        "Im Juli 2024 wurde die Zählschleife auf den gesamten Querschnitt des Rad- und "
        "Gehweges ausgeweitet. Die Breite der Zählschleife hat sich dadurch in etwa verdoppelt. "
        "Veränderungen in den Zahlen ab dem 1. Juli 2024 sind darauf zurückzuführen."
    ),
    "DEMO_ZS_04": (
        "Die Zählungen sind von Mitte August bis Ende Oktober 2024 stark von einer Baustelle "
        "beeinflusst (Leitungsbau, Radverkehr umgeleitet)."
    ),
}

#: The DB Rad+ importer's fields plus the street's name and road class.
SEGMENT_FIELDS = {**DBRAD_FIELDS, "name": "string", "road_class": "string"}
ROUTE_FIELDS = {
    "id": "string",
    "routennummer": "string",
    "name": "string",
    "status": "string",
    "richtung": "string",
    "source": "string",
}
#: The station importers' fields with the federal state after the name.
STATION_FIELDS = {
    **{k: v for k, v in COUNTER_STATION_FIELDS.items() if k in ("id", "name")},
    "federal_state": "string",
    **COUNTER_STATION_FIELDS,
}
SEGMENTS_TRUTH_SCHEMA = {
    "geometry": "None",
    "properties": {
        "id": "str",
        "segment_id": "str",
        "week_start": "date",
        "daily_cyclists": "float",
        "app_share": "float",
        "dtv": "float",
        "leisure_share": "float",
        "axes": "str",
        "official_route": "str",
    },
}
COUNTS_TRUTH_SCHEMA = {
    "geometry": "None",
    "properties": {
        "id": "str",
        "station_id": "str",
        "segment_id": "str",
        "date": "date",
        "expected_cyclists": "float",
        "anomaly": "str",
        "factor": "float",
    },
}


# --- the network -----------------------------------------------------------------------------


@dataclass
class Segment:
    """A piece of a street between junctions (or a part of a long piece)."""

    geometry: LineString
    street: Street
    nodes: tuple[tuple[float, float], tuple[float, float]]
    segment_id: str = ""
    dtv: float = 0.0
    leisure: float = 0.0
    axes: list[str] = field(default_factory=list)

    @property
    def road_class(self) -> str:
        return self.street.road_class

    @property
    def length(self) -> float:
        return self.geometry.length


def _on_edge(x: float, y: float) -> bool:
    return min(x - XMIN, XMAX - x, y - YMIN, YMAX - y) < 0.5


def _joined_lines(streets: list[Street]) -> list[LineString]:
    """Street lines, with ends that stop short of another street extended onto it."""
    lines = [s.geometry for s in streets]
    tree = STRtree(lines)
    out = []
    for i, line in enumerate(lines):
        coords = [tuple(c) for c in line.coords]
        for end in (0, -1):
            p = Point(coords[end])
            if _on_edge(p.x, p.y):
                continue
            near = [int(j) for j in tree.query(p, predicate="dwithin", distance=SNAP_M) if j != i]
            if not near:
                continue
            j = min(near, key=lambda k: (lines[k].distance(p), k))
            if lines[j].distance(p) < 1e-6:
                continue
            q = lines[j].interpolate(lines[j].project(p))
            if end == 0:
                coords.insert(0, (q.x, q.y))
            else:
                coords.append((q.x, q.y))
        out.append(LineString(coords))
    return out


def _junctions(a: LineString, b: LineString) -> list[Point]:
    """Points where two lines meet (crossing, touching or within a centimetre)."""
    inter = a.intersection(b)
    points: list[Point] = []
    for part in get_parts(inter):
        if part.is_empty:
            continue
        if part.geom_type == "Point":
            points.append(part)
        elif part.geom_type == "LineString":  # overlapping lines: their shared ends
            points += [Point(part.coords[0]), Point(part.coords[-1])]
    if not points:
        points.append(nearest_points(a, b)[1])
    return points


def _cluster(points: list[tuple[float, float]], radius: float) -> list[tuple[float, float]]:
    """For each point, the rounded mean of its cluster (points chained within ``radius``)."""
    xy = np.asarray(points)
    parent = list(range(len(points)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    near = np.argwhere(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)) < radius)
    for i, j in near.tolist():
        if i < j:
            parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(points)):
        groups.setdefault(root(i), []).append(i)
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(points)
    for members in groups.values():
        centre = tuple(round(float(v), 2) for v in xy[members].mean(axis=0))
        for i in members:
            out[i] = centre
    return out


def split_network(streets: list[Street]) -> list[Segment]:
    """The streets split at every junction, long pieces into equal parts <= MAX_PIECE_M.

    Junctions closer than JOIN_M are one node, so the segments form a connected graph."""
    lines = _joined_lines(streets)
    cuts: list[list[tuple[float, int]]] = [[] for _ in lines]
    points: list[tuple[float, float]] = []

    def cut(i: int, distance: float, p: Point) -> None:
        cuts[i].append((distance, len(points)))
        points.append((p.x, p.y))

    for i, line in enumerate(lines):
        cut(i, 0.0, Point(line.coords[0]))
        cut(i, line.length, Point(line.coords[-1]))
    tree = STRtree(lines)
    left, right = tree.query(lines, predicate="dwithin", distance=0.01)
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        for p in _junctions(lines[i], lines[j]):
            cut(i, lines[i].project(p), p)
            cut(j, lines[j].project(p), p)
    node = _cluster(points, JOIN_M)
    segments = []
    for street, line, marks in zip(streets, lines, cuts, strict=True):
        marks.sort()
        kept: list[tuple[float, float, tuple[float, float]]] = []  # (first d, last d, node)
        for d, k in marks:
            if kept and kept[-1][2] == node[k]:
                kept[-1] = (kept[-1][0], d, node[k])
            else:
                kept.append((d, d, node[k]))
        for (_, d0, p0), (d1, _, p1) in pairwise(kept):
            n = max(1, math.ceil((d1 - d0) / MAX_PIECE_M))
            stops = [d0 + (d1 - d0) * k / n for k in range(n + 1)]
            ends = [p0] + [
                tuple(round(v, 2) for v in line.interpolate(s).coords[0]) for s in stops[1:-1]
            ] + [p1]  # fmt: skip
            for k in range(n):
                piece = substring(line, stops[k], stops[k + 1])
                inner = np.round(np.asarray(piece.coords)[1:-1], 2).tolist()
                coords = [ends[k], *map(tuple, inner), ends[k + 1]]
                segments.append(Segment(LineString(coords), street, (ends[k], ends[k + 1])))
    return segments


class Network:
    """The segments as an undirected graph between their end nodes."""

    def __init__(self, segments: list[Segment]):
        self.segments = segments
        self.adjacent: dict[tuple, list[tuple[tuple, int]]] = {}
        for index, seg in enumerate(segments):
            a, b = seg.nodes
            self.adjacent.setdefault(a, []).append((b, index))
            self.adjacent.setdefault(b, []).append((a, index))
        self.nodes = sorted(self.adjacent)
        self._xy = np.array(self.nodes)

    def nearest_node(self, x: float, y: float) -> tuple:
        return self.nodes[int(np.argmin(np.hypot(self._xy[:, 0] - x, self._xy[:, 1] - y)))]

    def path(self, start: tuple, goal: tuple, cost: dict[str, float]) -> list[int]:
        """Segment indices of the cheapest path (length x cost of the road class); when
        ``goal`` cannot be reached, the path to the reached node nearest to it."""
        best = {start: 0.0}
        back: dict[tuple, tuple[tuple, int]] = {}
        queue = [(0.0, start)]
        while queue:
            d, node = heapq.heappop(queue)
            if node == goal:
                break
            if d > best[node]:
                continue
            for other, index in self.adjacent[node]:
                seg = self.segments[index]
                nd = d + seg.length * cost.get(seg.road_class, 1.0)
                if nd < best.get(other, math.inf):
                    best[other] = nd
                    back[other] = (node, index)
                    heapq.heappush(queue, (nd, other))
        if goal not in best:
            goal = min(best, key=lambda n: (math.dist(n, goal), n))
        out = []
        node = goal
        while node != start:
            node, index = back[node]
            out.append(index)
        return out[::-1]


def _straight(street: Street, vertical: bool) -> bool:
    coords = np.asarray(street.geometry.coords)
    span = coords[-1] - coords[0]
    return len(coords) == 2 and abs(span[0 if vertical else 1]) < 1.0


def _axis_paths(net: Network, streets: list[Street]) -> dict[str, list[int]]:
    """Segment chains of the axes A..E, found on any seed's network."""
    ns = [s for s in streets if _straight(s, vertical=True)]
    ew = [s for s in streets if _straight(s, vertical=False)]
    primary_ns = [s for s in ns if s.road_class == PRIMARY]
    px = primary_ns[0].geometry.coords[0][0] if primary_ns else XMIN + 1200.0
    full_ew = [s for s in ew if s.road_class == SECONDARY and s.geometry.length > 2000.0]
    quay = min(full_ew, key=lambda s: s.geometry.coords[0][1]) if full_ew else None
    qy = quay.geometry.coords[0][1] if quay else YMIN + 85.0
    rows = [s.geometry.coords[0][1] for s in full_ew if s is not quay]
    ya = min(rows, key=lambda y: abs(y - (YMIN + 1600.0))) if rows else YMIN + 1600.0
    cols = [s.geometry.coords[0][0] for s in ns if s.road_class == SECONDARY]
    xe = max(cols, key=lambda x: (abs(x - px), x)) if cols else XMIN + 2100.0
    diagonal = [
        s for s in streets
        if len(s.geometry.coords) == 3 and s.geometry.coords[0][0] == XMIN
        and s.geometry.coords[-1][1] == YMAX
    ]  # fmt: skip
    quiet = {PRIMARY: 2.0, SECONDARY: 0.8, RESIDENTIAL: 1.0, SERVICE: 3.0}
    main = {PRIMARY: 0.5, SECONDARY: 1.5, RESIDENTIAL: 1.5, SERVICE: 3.0}
    ends = {
        "A": ((XMIN, ya), (XMAX, ya), quiet),
        "B": ((px, qy), (px, YMAX), main),
        "D": ((XMIN, qy), (XMAX, qy), {}),
        "E": ((xe, qy), (xe, YMAX), quiet),
    }
    if diagonal:
        c = diagonal[0].geometry.coords
        ends["C"] = (c[0], c[-1], {SECONDARY: 0.8})
    else:
        ends["C"] = ((XMIN, YMIN + 1000.0), (XMIN + 800.0, YMAX), {})
    return {
        key: net.path(net.nearest_node(*a), net.nearest_node(*b), cost)
        for key, (a, b, cost) in sorted(ends.items())
    }


def _segment_ids(segments: list[Segment]) -> list[Segment]:
    """Ids as the DB Rad+ importer derives them (sha256 of the CRS84 coordinates); a segment
    repeating another one's geometry is left out."""
    to_crs84 = Transformer.from_crs(CRS, "OGC:CRS84", always_xy=True)
    out, seen = [], set()
    for seg in segments:
        xy = np.asarray(seg.geometry.coords)
        lon, lat = to_crs84.transform(xy[:, 0], xy[:, 1])
        seg.segment_id = segment_id(np.column_stack([lon, lat]).tolist())
        if seg.segment_id not in seen:
            seen.add(seg.segment_id)
            out.append(seg)
    return out


def _volumes(
    segments: list[Segment], paths: dict[str, list[int]], rng: np.random.Generator
) -> None:
    """Two-year mean daily cyclists (``dtv``) and leisure share of every segment."""
    streets = dict.fromkeys(id(s.street) for s in segments)  # in order of first appearance
    street_factor = dict(zip(streets, rng.lognormal(0.0, 0.35, len(streets)), strict=True))
    base = np.array([BASE_DTV[s.road_class] for s in segments])
    base *= np.array([street_factor[id(s.street)] for s in segments])
    base *= rng.lognormal(0.0, 0.1, len(segments))
    leisure_volume = base * np.array([LEISURE_SHARE[s.road_class] for s in segments])
    dtv = base.copy()
    for axis in AXES:
        path = paths.get(axis.key, [])
        if not path:
            continue
        lengths = np.array([segments[i].length for i in path])
        position = (np.cumsum(lengths) - lengths / 2) / lengths.sum()
        for index, t in zip(path, position, strict=True):
            extra = axis.volume * (0.85 + 0.3 * t)
            dtv[index] += extra
            leisure_volume[index] += extra * axis.leisure
            segments[index].axes.append(axis.key)
    for seg, v, lv in zip(segments, dtv, leisure_volume, strict=True):
        seg.dtv = float(v)
        seg.leisure = float(lv / v)


# --- calendar and weather --------------------------------------------------------------------


def count_days() -> list[date]:
    return [COUNT_START + timedelta(days=k) for k in range((COUNT_END - COUNT_START).days + 1)]


@dataclass
class Weather:
    """One generated daily weather series for the district (Hamburg-like climate)."""

    min_temperature_c: np.ndarray
    max_temperature_c: np.ndarray
    precipitation_mm: np.ndarray
    cloud_cover_percent: np.ndarray
    sunshine_hours: np.ndarray

    def day(self, k: int) -> dict[str, float]:
        return {
            "min_temperature_c": float(self.min_temperature_c[k]),
            "max_temperature_c": float(self.max_temperature_c[k]),
            "precipitation_mm": float(self.precipitation_mm[k]),
            "cloud_cover_percent": float(self.cloud_cover_percent[k]),
            "sunshine_hours": float(self.sunshine_hours[k]),
        }


def _day_length(doy: np.ndarray, latitude: float = 53.55) -> np.ndarray:
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    cos_w = -np.tan(np.radians(latitude)) * np.tan(declination)
    return 24.0 / np.pi * np.arccos(np.clip(cos_w, -1.0, 1.0))


def draw_weather(days: list[date], rng: np.random.Generator) -> Weather:
    """Daily weather: seasonal temperature with AR(1) anomalies, a two-state rain chain with
    gamma amounts, cloud cover and sunshine consistent with rain and day length."""
    n = len(days)
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    summer = 0.5 - 0.5 * np.cos(2 * np.pi * (doy - 15.0) / 365.25)  # 0 mid-January, 1 July
    wet = np.zeros(n, dtype=bool)
    u = rng.random(n)
    for k in range(n):
        wet[k] = u[k] < (0.62 if k and wet[k - 1] else 0.38)
    amount = rng.gamma(0.75, 4.2 + 2.0 * summer)
    precipitation = np.where(wet, np.maximum(0.1, np.round(amount, 1)), 0.0)
    cloud = np.where(
        wet,
        70.0 + 30.0 * rng.beta(3.0, 1.5, n),
        100.0 * rng.beta(2.4 - 0.7 * summer, 1.6 + 0.7 * summer),
    )
    sigma = 3.8 - 1.0 * summer
    shock = rng.normal(0.0, 1.0, n) * sigma * math.sqrt(1 - 0.78**2)
    anomaly = np.zeros(n)
    for k in range(n):
        anomaly[k] = (0.78 * anomaly[k - 1] if k else 0.0) + shock[k]
    mean = 9.8 - 8.4 * np.cos(2 * np.pi * (doy - 18.0) / 365.25) + anomaly - 1.0 * wet * summer
    spread = (5.0 + 4.0 * summer) * (1.25 - 0.6 * cloud / 100.0)
    clear = np.clip((1.0 - cloud / 100.0) * 1.2 + rng.normal(0.05, 0.06, n), 0.0, 0.95)
    return Weather(
        min_temperature_c=np.round(mean - spread / 2, 1),
        max_temperature_c=np.round(mean + spread / 2, 1),
        precipitation_mm=precipitation,
        cloud_cover_percent=np.round(cloud),
        sunshine_hours=np.round(_day_length(doy) * clear, 1),
    )


def day_profiles(days: list[date], weather: Weather) -> tuple[np.ndarray, np.ndarray]:
    """Commuter and leisure factors per day (calendar x season x weather), each with mean 1."""
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    weekday = np.array([d.weekday() for d in days])
    # Hamburg's calendar as the analysis reads it (public and school holidays, `holidays`)
    calendar = calendar_features(np.array(days, dtype="datetime64[D]"), "HH")
    holiday = calendar.public_holiday
    school = calendar.school_holiday & (weekday < 5) & ~holiday
    christmas = np.array([(d.month, d.day) >= (12, 24) or d.timetuple().tm_yday == 1 for d in days])
    commute = np.where(holiday, WEEKDAY_COMMUTE[6], np.take(WEEKDAY_COMMUTE, weekday))
    leisure = np.where(holiday, WEEKDAY_LEISURE[6], np.take(WEEKDAY_LEISURE, weekday))
    commute = commute * np.where(school, 0.85, 1.0) * np.where(christmas, 0.6, 1.0)
    leisure = leisure * np.where(school, 1.08, 1.0)
    season = np.cos(2 * np.pi * (doy - 190.0) / 365.25)
    commute *= 1.0 + 0.08 * season
    leisure *= 1.0 + 0.25 * season
    tmax, tmin = weather.max_temperature_c, weather.min_temperature_c
    rain = np.minimum(weather.precipitation_mm, 30.0)
    rainy = weather.precipitation_mm >= 1.0
    sun = weather.sunshine_hours
    frost, heat = tmin < -2.0, tmax > 30.0
    commute *= np.exp(
        0.015 * (tmax - 15) - 0.10 * rainy - 0.018 * rain + 0.012 * (sun - 5)
        - 0.12 * frost - 0.05 * heat
    )  # fmt: skip
    leisure *= np.exp(
        0.04 * (tmax - 15) - 0.25 * rainy - 0.03 * rain + 0.035 * (sun - 5)
        - 0.2 * frost - 0.15 * heat
    )  # fmt: skip
    return commute / commute.mean(), leisure / leisure.mean()


def week_app_factor(weather: Weather, days: list[date], start: date) -> float:
    """Fair-weather riders record more: the app share's factor in a week (0.85..1.15)."""
    k = days.index(start)
    week = slice(k, k + 7)
    value = math.exp(
        0.02 * (float(weather.max_temperature_c[week].mean()) - 15.0)
        + 0.03 * (float(weather.sunshine_hours[week].mean()) - 5.0)
        - 0.04 * float(weather.precipitation_mm[week].mean())
    )
    return min(1.15, max(0.85, value))


# --- stations --------------------------------------------------------------------------------


@dataclass
class Station:
    id: str
    segment: int  # index into the segments
    geometry: Point
    name: str
    directions: tuple[str, str]
    notes: str | None
    split: float  # share of direction 1


def _heading(dx: float, dy: float) -> str:
    names = ("Ost", "Nordost", "Nord", "Nordwest", "West", "Südwest", "Süd", "Südost")
    return names[round(math.degrees(math.atan2(dy, dx)) / 45.0) % 8]


def _site_candidates(
    segments: list[Segment], site: str, path: list[int], taken: set[int], streets: set[int]
) -> list[int]:
    """Segments a station of ``site`` may stand on, best first."""
    if len(site) == 1:  # an axis: a segment of that axis only, near the middle of it
        order = sorted(path, key=lambda i: abs(path.index(i) - len(path) // 2))
        candidates = [i for i in order if segments[i].axes == [site]] or order
    else:  # a road class off the axes, with middling traffic for its class
        off = [i for i, s in enumerate(segments) if s.road_class == site and not s.axes]
        if off:
            low, high = np.percentile([segments[i].dtv for i in off], [25, 75])
            candidates = [i for i in off if low <= segments[i].dtv <= high] or off
        else:
            candidates = [i for i, s in enumerate(segments) if s.road_class == site]
    candidates = [i for i in candidates if i not in taken] or [
        i for i in range(len(segments)) if i not in taken
    ]
    return [
        i
        for i in candidates
        if segments[i].length >= 60.0 and id(segments[i].street) not in streets
    ] or candidates


def _roadside(
    segments: list[Segment], index: int, side: float, check: bool = True
) -> tuple[int, Point | None, tuple[float, float], tuple[float, float]]:
    """A counter's position beside the middle of a segment (its direction and the normal to
    the side); the point is None when another segment passes within 10 m of it."""
    line = segments[index].geometry
    mid = line.interpolate(0.5, normalized=True)
    a = line.interpolate(max(0.0, line.length / 2 - 5.0))
    b = line.interpolate(min(line.length, line.length / 2 + 5.0))
    dx, dy = b.x - a.x, b.y - a.y
    norm = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / norm * side, dx / norm * side
    point = Point(round(mid.x + nx * STATION_OFFSET_M, 2), round(mid.y + ny * STATION_OFFSET_M, 2))
    if check and any(
        other.geometry.distance(point) < 10.0 for k, other in enumerate(segments) if k != index
    ):
        return index, None, (dx, dy), (nx, ny)
    return index, point, (dx, dy), (nx, ny)


def _place_stations(
    segments: list[Segment], paths: dict[str, list[int]], rng: np.random.Generator
) -> list[Station]:
    stations: list[Station] = []
    taken: set[int] = set()
    streets: set[int] = set()
    for sid, site in STATION_SITES:
        candidates = _site_candidates(segments, site, paths.get(site, []), taken, streets)
        if len(site) == 1:
            choice = candidates[:5]
        else:  # off the axes: far from the other stations
            far = sorted(
                candidates,
                key=lambda i: (
                    -min(
                        (segments[i].geometry.distance(st.geometry) for st in stations), default=0.0
                    )
                ),
            )
            choice = far[: max(1, len(far) // 4)]
        side = 1.0 if rng.random() < 0.5 else -1.0
        options = [
            (choice[int(k)], sd) for k in rng.permutation(len(choice)) for sd in (side, -side)
        ]
        for option in options:
            index, point, (dx, dy), (nx, ny) = _roadside(segments, *option)
            if point is not None:
                break
        else:  # every roadside spot has another segment within 10 m: take the first anyway
            index, point, (dx, dy), (nx, ny) = _roadside(segments, *options[0], check=False)
        seg = segments[index]
        taken.add(index)
        streets.add(id(seg.street))
        forward, backward = _heading(dx, dy), _heading(-dx, -dy)
        if forward in ("West", "Süd", "Südwest", "Nordwest"):
            forward, backward = backward, forward
        number = int(rng.integers(2, 120))
        name = f"{seg.street.name} {number}, {_heading(nx, ny)}seite"
        split = float(np.clip(rng.normal(0.5, 0.04), 0.4, 0.6))
        stations.append(
            Station(sid, index, point, name, (forward, backward), STATION_NOTES.get(sid), split)
        )
    return stations


# --- everything ------------------------------------------------------------------------------


@dataclass
class Cycling:
    """The generated cycling data, as feature dicts per layer."""

    segments: list[Segment]
    stations: list[Station]
    weather: Weather
    days: list[date]
    segment_weeks: list[dict] = field(default_factory=list)
    segments_truth: list[dict] = field(default_factory=list)
    routes: list[dict] = field(default_factory=list)
    counts: list[dict] = field(default_factory=list)
    counts_truth: list[dict] = field(default_factory=list)
    app_week_factors: dict[str, float] = field(default_factory=dict)


def build_cycling(streets: list[Street], rng: np.random.Generator) -> Cycling:
    """Generate the cycling data of the district's ``streets`` from ``rng``."""
    r_volume, r_weather, r_rides, r_stations, r_counts = rng.spawn(5)
    segments = _segment_ids(split_network(streets))
    net = Network(segments)
    paths = _axis_paths(net, streets)
    _volumes(segments, paths, r_volume)
    days = count_days()
    weather = draw_weather(days, r_weather)
    commute, leisure = day_profiles(days, weather)
    mix = np.array([s.leisure for s in segments])[:, None]
    level = np.array([s.dtv for s in segments])[:, None] * ((1 - mix) * commute + mix * leisure)
    out = Cycling(segments, [], weather, days)
    _segment_weeks(out, level, r_rides)
    out.routes = _routes(segments, paths)
    out.stations = _place_stations(segments, paths, r_stations)
    _counts(out, level, r_counts)
    return out


def _segment_weeks(out: Cycling, level: np.ndarray, rng: np.random.Generator) -> None:
    routes = {a.key: a.route[0] for a in AXES if a.route}
    for start in WEEKS:
        k = out.days.index(start)
        truth = level[:, k : k + 7].mean(axis=1)
        factor = week_app_factor(out.weather, out.days, start)
        out.app_week_factors[start.isoformat()] = round(factor, 3)
        base = np.array([APP_SHARE[s.road_class] for s in out.segments])
        share = base * factor * rng.lognormal(0.0, APP_SHARE_SEGMENT_SIGMA, len(base))
        mu = 7.0 * truth * share
        rides = rng.poisson(rng.gamma(DISPERSION_RIDES, mu / DISPERSION_RIDES))
        speed = np.array(
            [{PRIMARY: 19.0, SECONDARY: 18.0, RESIDENTIAL: 16.0, SERVICE: 14.0}[s.road_class]
             + (1.5 if s.axes else 0.0) for s in out.segments]
        ) + rng.normal(0.0, 1.2, len(base))  # fmt: skip
        end = start + timedelta(days=6)
        for seg, t, sh, n, v in zip(out.segments, truth, share, rides, speed, strict=True):
            key = f"{seg.segment_id}:{start.isoformat()}"
            out.segment_weeks.append(
                {
                    "geometry": seg.geometry,
                    "properties": {
                        "id": key,
                        "segment_id": seg.segment_id,
                        "week_start": start.isoformat(),
                        "week_end": end.isoformat(),
                        "rides": int(n),
                        "speed_kmh": round(float(v), 1),
                        "gml_id": None,
                        "name": seg.street.name,
                        "road_class": seg.road_class,
                    },
                }
            )
            official = sorted(routes[a] for a in seg.axes if a in routes)
            out.segments_truth.append(
                {
                    "id": key,
                    "segment_id": seg.segment_id,
                    "week_start": start.isoformat(),
                    "daily_cyclists": round(float(t), 2),
                    "app_share": round(float(sh), 5),
                    "dtv": round(seg.dtv, 2),
                    "leisure_share": round(seg.leisure, 3),
                    "axes": ",".join(seg.axes) or None,
                    "official_route": ",".join(official) or None,
                }
            )


def _routes(segments: list[Segment], paths: dict[str, list[int]]) -> list[dict]:
    """The official route network: one LineString per route and street along it."""
    features = []
    for axis in AXES:
        if axis.route is None or not paths.get(axis.key):
            continue
        number, name, status = axis.route
        runs: list[list[int]] = []
        for index in paths[axis.key]:
            if runs and segments[runs[-1][-1]].street is segments[index].street:
                runs[-1].append(index)
            else:
                runs.append([index])
        k = 0
        for run in runs:
            merged = line_merge(MultiLineString([segments[i].geometry for i in run]))
            for part in get_parts(merged):
                k += 1
                features.append(
                    {
                        "geometry": part,
                        "properties": {
                            "id": f"DEMO_VELOROUTE_{number}_{k:02d}",
                            "routennummer": number,
                            "name": name,
                            "status": status,
                            "richtung": "beidseitig",
                        },
                    }
                )
    return features


def _counts(out: Cycling, level: np.ndarray, rng: np.random.Generator) -> None:
    n = len(out.days)
    index = {d: k for k, d in enumerate(out.days)}
    for station in out.stations:
        expected = level[station.segment]
        factor = np.ones(n)
        kind: list[str | None] = [None] * n
        stuck: list[tuple[int, int]] = []
        stuck_day = np.zeros(n, dtype=bool)
        for sid, first, last, what, f in ANOMALIES:
            if sid != station.id:
                continue
            a, b = index[first], index[last] + 1
            kind[a:b] = [what] * (b - a)
            if f is None:
                stuck.append((a, b))
                stuck_day[a:b] = True
            else:
                factor[a:b] = f
        mu = expected * factor
        total = rng.poisson(rng.gamma(DISPERSION_COUNTS, mu / DISPERSION_COUNTS))
        p = np.clip(station.split + rng.normal(0.0, 0.015, n), 0.3, 0.7)
        first = rng.binomial(total, p)
        second = total - first
        for a, b in stuck:
            first[a:b], second[a:b] = first[a - 1], second[a - 1]
        seg = out.segments[station.segment]
        for k, day in enumerate(out.days):
            weather = out.weather.day(k)
            for direction, value in ((1, first[k]), (2, second[k])):
                out.counts.append(
                    {
                        "geometry": None,
                        "properties": {
                            "id": f"{station.id}:{day.isoformat()}:{direction}",
                            "station_id": station.id,
                            "date": day.isoformat(),
                            "direction": direction,
                            "direction_name": station.directions[direction - 1],
                            "count": int(value),
                            **weather,
                        },
                    }
                )
            out.counts_truth.append(
                {
                    "id": f"{station.id}:{day.isoformat()}",
                    "station_id": station.id,
                    "segment_id": seg.segment_id,
                    "date": day.isoformat(),
                    "expected_cyclists": round(float(expected[k]), 2),
                    "anomaly": kind[k],
                    "factor": None if stuck_day[k] else float(factor[k]),
                }
            )


# --- writing ---------------------------------------------------------------------------------


def write_cycling(path: Path, cycling: Cycling, source: str) -> None:
    """Add the served cycling layers (through the feature store, with the importers' fields)
    and the two hidden truth tables to the district's GeoPackage."""
    from cut_processes.io.store import open_store  # imports pygeoapi: only when writing

    srid = int(CRS.split(":")[1])
    store = open_store(path)

    def labelled(features: list[dict]) -> list[dict]:
        return [
            {"geometry": f["geometry"], "properties": {**f["properties"], "source": source}}
            for f in features
        ]

    store.replace_collection(
        "bike_segments", labelled(cycling.segment_weeks), fields=dict(SEGMENT_FIELDS),
        geometry_type="LineString", srid=srid,
    )  # fmt: skip
    store.replace_collection(
        "bike_routes", labelled(cycling.routes), fields=dict(ROUTE_FIELDS),
        geometry_type="LineString", srid=srid,
    )  # fmt: skip
    stations = [
        {
            "geometry": s.geometry,
            "properties": {
                "id": s.id,
                "name": s.name,
                "federal_state": FEDERAL_STATE,
                "direction_1": s.directions[0],
                "direction_2": s.directions[1],
                "notes": s.notes,
            },
        }
        for s in cycling.stations
    ]
    store.replace_collection(
        "bike_stations", labelled(stations), fields=dict(STATION_FIELDS),
        geometry_type="Point", srid=srid,
    )  # fmt: skip
    store.replace_collection(
        "bike_counts", labelled(cycling.counts), fields=dict(COUNT_FIELDS),
        geometry_type=NO_GEOMETRY, srid=srid,
    )  # fmt: skip
    for layer, schema, rows in (
        ("bike_segments_truth", SEGMENTS_TRUTH_SCHEMA, cycling.segments_truth),
        ("bike_truth", COUNTS_TRUTH_SCHEMA, cycling.counts_truth),
    ):
        with fiona.open(path, "w", driver="GPKG", schema=schema, layer=layer) as dst:
            dst.writerecords({"geometry": None, "properties": row} for row in rows)
    with closing(sqlite3.connect(path)) as con, con:
        for layer in ("bike_segments_truth", "bike_truth"):
            con.execute(f'CREATE UNIQUE INDEX "{layer}_id_idx" ON "{layer}" ("id")')
