"""Cycling volumes on a street network: calibration to counting stations, most-used corridors.

Pure domain logic on arrays: geometries are numpy arrays of shapely geometries in one metric CRS
(EPSG:25832 in the suite), volumes are numbers per segment (DB Rad+ ``rides`` in its week, or any
count per period). No pygeoapi, Flask or HTTP here; bad input raises
:class:`~cut_processes.io.inputs.InputProblem` naming the input and the feature.

Public API
----------
``check_segments(lines, volume, *, ids=None, repair=False, input_name="segments",
volume_name="volumes") -> CheckedSegments``
    Validates segments and their volumes. Without ``repair`` any problem raises
    ``InputProblem`` naming the offending features by kind; with ``repair`` those features are
    dropped (or merged / split where that is unambiguous) and listed in ``dropped`` /
    ``repaired``. ``CheckedSegments.index`` maps the kept lines back to the input positions.

``match_stations(station_points, segment_lines, *, max_distance_m=25.0, bearings_deg=None,
max_bearing_diff_deg=30.0) -> StationMatches``
    The nearest segment of each station within ``max_distance_m`` (STRtree ``dwithin`` query;
    ties go to the lowest segment index), ``-1`` where none. With ``bearings_deg`` (the direction a
    station counts, degrees clockwise from north or as any angle mod 180, NaN = unknown) only
    segments whose orientation at the nearest point is within ``max_bearing_diff_deg`` are
    candidates.

``calibrate(segment_rides, station_matches, *, road_class=None, period_days=7.0,
min_stations_per_class=3, interval=0.8) -> Calibration``
    ``station_matches``: (station_id, segment_index, counted daily cyclists over the same period
    as the rides). Per segment ``cyclists_estimated`` / ``cyclists_low`` / ``cyclists_high``
    (cyclists per day; NaN without a matched station), ``calibration`` (``"road_class factor"``,
    ``"global factor"`` or ``"none: relative volume only"``) and ``relative_volume`` (rides / the
    median rides, always). ``Calibration.leave_one_station_out()`` validates it.

``build_corridors(segment_lines, volume, *, names=None, top_n=20, min_volume=None,
snap_tolerance_m=1.0, max_deflection_deg=40.0, volume_weight_deg=10.0,
bearing_length_m=10.0, max_bend_deg=120.0, fold_window_m=100.0,
min_straightness=0.5) -> list[Corridor]``
    Joins segments into continuous, mostly straight corridors of well-used segments (strokes,
    see :func:`build_corridors`) and returns the ``top_n`` by ride-km (volume x km), rank 1 first.

``official_overlap(corridors, official_lines, *, official_names=None, buffer_m=20.0,
heavy_share=0.5, step_m=1.0) -> dict``
    Share of each corridor's length and ride-km within ``buffer_m`` of an official route
    network; the share of the corridors' ride-km on it; the corridors mostly off it.
    ``length_near(lines, official_lines, *, buffer_m=20.0, step_m=1.0, official_names=None)``
    gives the same measure for any lines (e.g. the whole network, as a baseline).

``NetworkVolumes.from_rows(segment_ids, geometries, rides, days, periods, names, road_classes)``
    Rows per segment and period aggregated per segment id: ``rides_total``, ``rides_per_day``
    over all the periods' days, ``weekly`` volumes, ``days``; ``.stability(corridors, top_n)``.

``counted_per_day(daily, days) -> (cyclists per day or None, coverage)``
    A counting station's mean over the segments' days (counted where complete and unflagged,
    else the model's expectation), for :func:`calibrate`.

``rank_stability(weeks, *, top_sets=None, corridors=None, segment_lengths=None) -> dict``
    Spearman rank correlation of segment volumes between consecutive weeks (segments present in
    both), the length-weighted Jaccard overlap of the weeks' top-corridor segment sets, and the
    rank correlation of given corridors' weekly ride-km.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.stats import spearmanr
from scipy.stats import t as student_t

from cut_processes.io.inputs import InputProblem

#: Calibration labels per segment.
ROAD_CLASS_FACTOR = "road_class factor"
GLOBAL_FACTOR = "global factor"
NO_CALIBRATION = "none: relative volume only"
#: Log-scale spread of station factors assumed while fewer than 3 stations give no estimate of
#: their own: a factor 2 either way at one standard deviation, deliberately wide (the share of
#: cyclists who record their rides differs from site to site, and one station cannot say how
#: much).
PRIOR_LOG_SPREAD = math.log(2.0)
#: Lines whose coordinates all lie within these bounds look like longitude/latitude degrees.
_DEGREE_BOUNDS = (-180.0, -90.0, 180.0, 90.0)
#: A coordinate beyond this (metres) is certainly not in degrees.
_METRIC_MAGNITUDE = 10_000.0
#: Median segment length below which lines within lon/lat bounds are taken for degrees (no
#: street segment is a centimetre long; 0.01 degrees is about 1 km).
_DEGREE_LENGTH = 0.01
_SHOWN = 5
#: Axis bearing (degrees, mod 180) of the direction names counting stations give
#: (Munich's richtung_1/2: Nord, Süd, Ost, West, ...).
COMPASS = {
    "nord": 0.0,
    "süd": 0.0,
    "ost": 90.0,
    "west": 90.0,
    "nordost": 45.0,
    "südwest": 45.0,
    "nordwest": 135.0,
    "südost": 135.0,
}
#: Up to this many stations the spread comes from leave-one-out prediction errors.
_LOO_MAX_STATIONS = 60


# --- input checks ------------------------------------------------------------------------------


@dataclass
class CheckedSegments:
    """Segments fit for the analysis: LineStrings (metres) with finite volumes >= 0.

    ``index[i]`` is the input position of ``lines[i]`` (repeated when a MultiLineString was split
    into its parts); ``ids`` are the input ids of the kept lines (a list; without input ids the
    positions, i.e. ``index``). ``dropped`` and ``repaired`` hold ``(feature reference, reason)``
    pairs.
    """

    lines: np.ndarray
    volume: np.ndarray
    ids: Sequence[Any]
    index: np.ndarray
    dropped: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[tuple[str, str]] = field(default_factory=list)


def _ref(ids: Sequence[Any] | None, i: int, noun: str) -> str:
    if ids is None:
        return f"{noun} {i}"
    return f"{noun} {ids[i]!r} (feature {i})"


def _listing(refs: list[str]) -> str:
    shown = ", ".join(refs[:_SHOWN])
    return shown + (f" and {len(refs) - _SHOWN} more" if len(refs) > _SHOWN else "")


def _volumes(volume: Any, n: int, input_name: str, ids: Sequence[Any] | None) -> np.ndarray:
    """Finite numbers >= 0, one per feature, or InputProblem naming the first bad ones."""
    values = list(volume) if not isinstance(volume, np.ndarray) else volume
    if len(values) != n:
        raise InputProblem(input_name, f"{len(values)} volumes for {n} segments")
    numeric = np.asarray(values) if isinstance(values, np.ndarray) else None
    if numeric is not None and numeric.dtype.kind in "iuf":  # fast path for numeric arrays
        out = numeric.astype(float)
        if np.isfinite(out).all() and (out >= 0).all():
            return out
    out = np.empty(n, dtype=float)
    bad: list[str] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or v is None:
            number = math.nan
        else:
            try:
                number = float(v)
            except (TypeError, ValueError):
                number = math.nan
        if not math.isfinite(number) or number < 0:
            bad.append(f"{_ref(ids, i, 'segment')}: {v!r}")
        out[i] = number
    if bad:
        raise InputProblem(
            input_name, f"volumes must be numbers >= 0; {len(bad)} are not: {_listing(bad)}"
        )
    return out


def _looks_like_degrees(bounds: np.ndarray) -> np.ndarray:
    lo_x, lo_y, hi_x, hi_y = _DEGREE_BOUNDS
    return (
        (bounds[:, 0] >= lo_x)
        & (bounds[:, 2] <= hi_x)
        & (bounds[:, 1] >= lo_y)
        & (bounds[:, 3] <= hi_y)
    )


def check_segments(
    lines: Any,
    volume: Any,
    *,
    ids: Sequence[Any] | None = None,
    repair: bool = False,
    input_name: str = "segments",
    volume_name: str = "volumes",
) -> CheckedSegments:
    """Street segments (LineStrings in metres) and their volumes, checked.

    Problems: no or empty geometry, a geometry that is not a line, non-finite coordinates,
    zero length, a MultiLineString of disconnected parts, coordinates in degrees mixed with
    metres (mixed CRS), volumes that are not numbers >= 0. A MultiLineString whose parts join
    into one line is merged (reported in ``repaired``) in both modes.

    :param repair: drop (or split, for disconnected MultiLineStrings) the offending features
        and report them instead of raising. Bad volumes always raise (a volume is not guessed).
    :raises InputProblem: naming ``input_name`` (or ``volume_name``) and the features.
    """
    geoms = np.asarray(lines, dtype=object).ravel() if not isinstance(lines, np.ndarray) else lines
    n = len(geoms)
    if ids is not None and len(ids) != n:
        raise InputProblem(input_name, f"{len(ids)} ids for {n} segments")
    if n == 0:
        raise InputProblem(input_name, "no segments")
    vols = _volumes(volume, n, volume_name, ids)
    is_geometry = shapely.is_geometry(geoms)
    geoms = geoms.copy() if is_geometry.all() else np.where(is_geometry, geoms, None)
    problems: dict[str, list[int]] = defaultdict(list)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        problems["no geometry"].append(int(i))
    type_ids = shapely.get_type_id(geoms)
    repaired: list[tuple[str, str]] = []
    multi = (type_ids == shapely.GeometryType.MULTILINESTRING) & ~missing
    if multi.any():
        merged = shapely.line_merge(geoms[multi])
        single = shapely.get_type_id(merged) == shapely.GeometryType.LINESTRING
        for i, g in zip(np.flatnonzero(multi)[single], merged[single], strict=True):
            geoms[i] = g
            repaired.append((_ref(ids, int(i), "segment"), "MultiLineString merged into a line"))
        for i in np.flatnonzero(multi)[~single]:
            problems["a MultiLineString of disconnected parts"].append(int(i))
        type_ids = shapely.get_type_id(geoms)
    other = ~missing & ~multi & (type_ids != shapely.GeometryType.LINESTRING)
    for i in np.flatnonzero(other):
        problems[f"a {geoms[i].geom_type}, not a line"].append(int(i))
    lines_ok = ~missing & ~other & (type_ids == shapely.GeometryType.LINESTRING)
    bounds = np.full((n, 4), np.nan)
    bounds[lines_ok] = shapely.bounds(geoms[lines_ok])
    coords, owner = shapely.get_coordinates(geoms[lines_ok], return_index=True)
    finite = np.zeros(n, dtype=bool)
    finite[np.flatnonzero(lines_ok)] = np.isfinite(bounds[lines_ok]).all(axis=1)
    finite[np.flatnonzero(lines_ok)[owner[~np.isfinite(coords).all(axis=1)]]] = False
    for i in np.flatnonzero(lines_ok & ~finite):
        problems["non-finite coordinates"].append(int(i))
    usable = lines_ok & finite
    length = np.zeros(n)
    length[usable] = shapely.length(geoms[usable])
    for i in np.flatnonzero(usable & (length <= 0)):
        problems["zero length"].append(int(i))
    usable &= length > 0
    degrees = usable & _looks_like_degrees(np.nan_to_num(bounds))
    metric = usable & (np.abs(np.nan_to_num(bounds)).max(axis=1) > _METRIC_MAGNITUDE)
    if degrees.any() and metric.any():
        for i in np.flatnonzero(degrees):
            problems["coordinates in degrees among segments in metres (mixed CRS)"].append(int(i))
    elif usable.any() and degrees[usable].all() and np.median(length[usable]) < _DEGREE_LENGTH:
        # all within lon/lat bounds and segments of a few millimetres: degrees, not metres
        raise InputProblem(
            input_name,
            "coordinates look like longitude/latitude degrees; the analysis needs metres "
            "(reproject to EPSG:25832 or name the input's CRS)",
        )
    if problems and not repair:
        text = "; ".join(
            f"{len(rows)} with {reason}: {_listing([_ref(ids, i, 'segment') for i in rows])}"
            for reason, rows in problems.items()
        )
        raise InputProblem(input_name, f"unusable segments ({text})")
    dropped = [
        (_ref(ids, i, "segment"), reason)
        for reason, rows in problems.items()
        if reason != "a MultiLineString of disconnected parts"
        for i in rows
    ]
    keep = np.ones(n, dtype=bool)
    for rows in problems.values():
        keep[rows] = False
    kept, index = geoms[keep], np.flatnonzero(keep)
    split = problems.get("a MultiLineString of disconnected parts", [])
    if split:
        parts, owner = shapely.get_parts(geoms[split], return_index=True)
        longer = shapely.length(parts) > 0
        parts, owner = parts[longer], np.asarray(split)[owner[longer]]
        for i in split:
            repaired.append(
                (
                    _ref(ids, i, "segment"),
                    f"MultiLineString split into {int((owner == i).sum())} lines, each with the "
                    "feature's volume",
                )
            )
        index = np.concatenate([index, owner])
        order = np.argsort(index, kind="stable")
        kept, index = np.concatenate([kept, parts])[order], index[order]
    if len(kept) == 0:
        raise InputProblem(input_name, f"no usable segments ({len(dropped)} dropped)")
    kept_ids = [ids[i] for i in index] if ids is not None else index
    return CheckedSegments(kept, vols[index], kept_ids, index, dropped, repaired)


def _check_lines(lines: Any, input_name: str) -> np.ndarray:
    """An array of LineStrings with positive length, else InputProblem (no repair)."""
    geoms = np.asarray(lines, dtype=object) if not isinstance(lines, np.ndarray) else lines
    return check_segments(geoms, np.zeros(len(geoms)), input_name=input_name).lines


# --- stations ----------------------------------------------------------------------------------


@dataclass
class StationMatches:
    """Per station: the matched segment (index into the segment array, -1 = none) and the
    distance in metres (NaN without a match)."""

    segment_index: np.ndarray
    distance_m: np.ndarray

    def __iter__(self):  # allows ``index, distance = match_stations(...)``
        return iter((self.segment_index, self.distance_m))


def _orientation_at(lines: np.ndarray, points: np.ndarray, half_m: float = 5.0) -> np.ndarray:
    """Orientation (degrees clockwise from north, mod 180) of ``lines`` where ``points`` project."""
    at = shapely.line_locate_point(lines, points)
    length = shapely.length(lines)
    a = shapely.line_interpolate_point(lines, np.clip(at - half_m, 0, length))
    b = shapely.line_interpolate_point(lines, np.clip(at + half_m, 0, length))
    d = shapely.get_coordinates(b) - shapely.get_coordinates(a)
    return np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 180.0


def match_stations(
    station_points: Any,
    segment_lines: Any,
    *,
    max_distance_m: float = 25.0,
    bearings_deg: Any = None,
    max_bearing_diff_deg: float = 30.0,
) -> StationMatches:
    """The segment each counting station lies on: the nearest within ``max_distance_m``.

    :param station_points: Points in the segments' metric CRS.
    :param bearings_deg: optional direction each station counts (degrees clockwise from north;
        only the axis matters, so 90 and 270 are the same street direction; NaN = unknown).
    :returns: segment index per station (-1 = none within reach) and the distance (m).
    :raises InputProblem: ``stations`` without point geometry; ``stations`` far outside the
        segments' extent (another CRS); bad ``max_distance_m``.
    """
    if not (isinstance(max_distance_m, int | float) and max_distance_m > 0):
        raise InputProblem("max_distance_m", f"must be a number > 0, got {max_distance_m!r}")
    points = np.asarray(station_points, dtype=object)
    points = np.where(shapely.is_geometry(points), points, None)
    bad = np.flatnonzero(
        shapely.is_missing(points)
        | shapely.is_empty(points)
        | (shapely.get_type_id(points) != shapely.GeometryType.POINT)
    )
    if len(bad):
        raise InputProblem(
            "stations",
            "stations need Point geometries; not so for " + _listing([f"station {i}" for i in bad]),
        )
    lines = _check_lines(segment_lines, "segments")
    n = len(points)
    index = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    if n == 0:
        return StationMatches(index, distance)
    reach = shapely.box(*shapely.total_bounds(lines)).buffer(max(1_000.0, max_distance_m))
    if not shapely.intersects(reach, shapely.multipoints(points)):
        raise InputProblem(
            "stations",
            f"no station lies within 1 km of the segments' extent "
            f"{np.round(shapely.total_bounds(lines)).tolist()} (stations "
            f"{np.round(shapely.total_bounds(points), 3).tolist()}): a different CRS?",
        )
    tree = shapely.STRtree(lines)
    # Every segment within reach, then the nearest per station: the `dwithin` query and one
    # vectorised distance call are about 3x faster than STRtree.query_nearest here.
    pi, si = tree.query(points, predicate="dwithin", distance=max_distance_m)
    dist = shapely.distance(points[pi], lines[si])
    if bearings_deg is not None:
        bearings = np.asarray(bearings_deg, dtype=float)
        if bearings.shape != (n,):
            raise InputProblem("bearings", f"{bearings.size} bearings for {n} stations")
        known = np.isfinite(bearings[pi])
        if known.any():
            orient = _orientation_at(lines[si[known]], points[pi[known]])
            diff = np.abs((bearings[pi[known]] % 180.0) - orient)
            aligned = np.ones(len(pi), dtype=bool)
            aligned[known] = np.minimum(diff, 180.0 - diff) <= max_bearing_diff_deg
            pi, si, dist = pi[aligned], si[aligned], dist[aligned]
    # nearest first, ties to the lowest segment index
    order = np.lexsort((si, dist, pi))
    pi, si, dist = pi[order], si[order], dist[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, dtype=bool)
    index[pi[first]] = si[first]
    distance[pi[first]] = dist[first]
    return StationMatches(index, distance)


# --- calibration -------------------------------------------------------------------------------


def _factor_table(
    log_ratio: np.ndarray, classes: np.ndarray, min_per_class: int
) -> tuple[float, dict[str, float], dict[str, int]]:
    """Global median ratio, per-class median ratios (classes with enough stations), counts."""
    global_factor = float(np.exp(np.median(log_ratio)))
    counts = Counter(c for c in classes if c is not None)
    by_class = {
        c: float(np.exp(np.median(log_ratio[classes == c])))
        for c, k in counts.items()
        if k >= min_per_class
    }
    return global_factor, by_class, dict(counts)


@dataclass
class _Fit:
    """Factors and the log-scale spread of a prediction at a new site."""

    global_factor: float
    by_class: dict[str, float]
    counts: dict[str, int]
    spread: float
    quantile_scale: float  # the interval's half-width in units of ``spread``

    def factor(self, road_class: Any) -> tuple[float, str]:
        if road_class in self.by_class:
            return self.by_class[road_class], ROAD_CLASS_FACTOR
        return self.global_factor, GLOBAL_FACTOR


def _fit(
    log_ratio: np.ndarray,
    classes: np.ndarray,
    station_rides: np.ndarray,
    min_per_class: int,
    interval: float,
) -> _Fit:
    """Factors from the stations, and the spread of their leave-one-out prediction errors.

    Each station's log ratio is predicted by the factors fitted without it (its class factor
    where the class keeps enough stations, else the global one); the spread is the robust SD
    (1.4826 x median absolute error) of these prediction errors, so it holds both the site to
    site differences and the uncertainty of the factor itself. Residuals around a median of
    the same few stations would be too small (one of them is exactly 0). Above
    ``_LOO_MAX_STATIONS`` stations the in-sample residuals are used (the difference vanishes).
    The interval uses Student's t with n - 1 degrees of freedom (the spread is estimated from
    n stations); below 3 stations the spread is ``PRIOR_LOG_SPREAD`` and the quantile normal.
    """
    g, by_class, counts = _factor_table(log_ratio, classes, min_per_class)
    n = len(log_ratio)
    level = 0.5 + interval / 2
    if n < 3:
        return _Fit(g, by_class, counts, PRIOR_LOG_SPREAD, NormalDist().inv_cdf(level))
    if n <= _LOO_MAX_STATIONS:
        errors = np.empty(n)
        for k in range(n):
            rest = np.arange(n) != k
            gk, by_k, _ = _factor_table(log_ratio[rest], classes[rest], min_per_class)
            errors[k] = log_ratio[k] - math.log(by_k.get(classes[k], gk))
    else:
        errors = log_ratio - np.log([by_class.get(c, g) for c in classes])
    spread = float(1.4826 * np.median(np.abs(errors)))
    # the errors hold the Poisson noise of the stations' own rides too; a segment's interval
    # adds its own, so it is taken out here (typical station: the median of 1/rides)
    spread = math.sqrt(max(spread**2 - float(np.median(1 / np.maximum(station_rides, 1.0))), 0))
    return _Fit(g, by_class, counts, spread, float(student_t.ppf(level, n - 1)))


@dataclass
class Calibration:
    """Crowdsourced rides -> counted cyclists per day; see :func:`calibrate`.

    Per segment arrays: ``cyclists_estimated``, ``cyclists_low``, ``cyclists_high`` (cyclists per
    day, NaN where ``calibration`` is ``NO_CALIBRATION``), ``calibration`` (labels),
    ``relative_volume``. ``stations``: the stations used, with their ratio; ``excluded``:
    (station id, reason) for stations that could not be used.
    """

    cyclists_estimated: np.ndarray
    cyclists_low: np.ndarray
    cyclists_high: np.ndarray
    calibration: np.ndarray
    relative_volume: np.ndarray
    global_factor: float | None
    factors_by_class: dict[str, float]
    log_spread: float | None
    interval: float
    stations: list[dict[str, Any]]
    excluded: list[tuple[Any, str]]
    period_days: float
    min_stations_per_class: int
    _rides: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    _classes: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=object))

    def summary(self) -> dict[str, Any]:
        """The calibration's parameters as plain values."""
        return {
            "stations_used": len(self.stations),
            "stations_excluded": [{"station_id": s, "reason": r} for s, r in self.excluded],
            "global_factor": self.global_factor,
            "factors_by_class": dict(self.factors_by_class),
            "log_spread": self.log_spread,
            "interval": self.interval,
            "period_days": self.period_days,
            "segments_by_calibration": dict(Counter(self.calibration.tolist())),
        }

    def leave_one_station_out(self) -> dict[str, Any]:
        """Each station predicted by a calibration fitted without it.

        :returns: ``stations`` (station_id, road_class, counted, predicted, low, high,
            error_pct = 100 (predicted - counted) / counted, inside the interval, which factor),
            and ``summary``: n, median and mean absolute % error, the interval's coverage next
            to its nominal level. Needs at least two usable stations (else only a reason).
        """
        rows: list[dict[str, Any]] = []
        if len(self.stations) < 2:
            return {
                "stations": rows,
                "summary": {
                    "n": len(self.stations),
                    "reason": "leave-one-station-out needs at least 2 usable stations",
                },
            }
        seg = np.array([s["segment_index"] for s in self.stations])
        counted = np.array([s["counted_per_day"] for s in self.stations])
        log_ratio = np.log([s["ratio"] for s in self.stations])
        classes = np.array([s["road_class"] for s in self.stations], dtype=object)
        for k, station in enumerate(self.stations):
            rest = np.arange(len(self.stations)) != k
            fit = _fit(
                log_ratio[rest],
                classes[rest],
                self._rides[seg[rest]],
                self.min_stations_per_class,
                self.interval,
            )
            factor, label = fit.factor(classes[k])
            rides = float(self._rides[seg[k]])
            pred = factor * rides / self.period_days
            half = fit.quantile_scale * math.sqrt(fit.spread**2 + 1 / max(rides, 1.0))
            low, high = pred * math.exp(-half), pred * math.exp(half)
            rows.append(
                {
                    "station_id": station["station_id"],
                    "road_class": classes[k],
                    "counted_per_day": float(counted[k]),
                    "predicted_per_day": pred,
                    "low": low,
                    "high": high,
                    "error_pct": float(100.0 * (pred - counted[k]) / counted[k]),
                    "inside_interval": bool(low <= counted[k] <= high),
                    "calibration": label,
                }
            )
        errors = np.abs([r["error_pct"] for r in rows])
        return {
            "stations": rows,
            "summary": {
                "n": len(rows),
                "median_abs_error_pct": float(np.median(errors)),
                "mean_abs_error_pct": float(np.mean(errors)),
                "interval_coverage": float(np.mean([r["inside_interval"] for r in rows])),
                "nominal_interval": self.interval,
            },
        }


def calibrate(
    segment_rides: Any,
    station_matches: Sequence[tuple[Any, int, float]],
    *,
    road_class: Sequence[str | None] | None = None,
    period_days: float = 7.0,
    min_stations_per_class: int = 3,
    interval: float = 0.8,
) -> Calibration:
    """Daily cyclists per segment from crowdsourced rides, calibrated at counting stations.

    Model: counted cyclists per day = factor x crowdsourced rides per day, with one factor per
    road class (the median of the class's station ratios) where the class has at least
    ``min_stations_per_class`` stations, else the median ratio of all stations. Medians of ratios
    are robust against a station on the wrong segment or a counter fault, and one parameter per
    class is all a handful of stations can carry (a log-log slope is not identifiable from a
    few stations). The interval (``interval``, e.g. 0.8 = 10th..90th percentile) is log-normal
    with half-width ``t x sqrt(s² + 1/rides)``: ``s`` the robust spread of the stations'
    leave-one-out prediction errors in log space (see :func:`_fit`; ``PRIOR_LOG_SPREAD`` below
    3 stations), ``t`` Student's quantile with n - 1 degrees of freedom, ``1/rides`` the Poisson
    noise of the segment's own ride count.

    :param segment_rides: rides per segment in the period (counts >= 0).
    :param station_matches: (station_id, segment_index or -1, counted cyclists per day averaged
        over the same period). Stations without a segment, on a segment without rides or with a
        count <= 0 are listed in ``excluded``.
    :param road_class: per segment (None = unknown, uses the global factor).
    :param period_days: length of the rides' period in days (7 for DB Rad+ weeks).
    :raises InputProblem: bad rides (``segments``), bad station rows (``stations``), bad
        parameters (named).
    """
    rides = _volumes(segment_rides, len(segment_rides), "segments", None)
    n = len(rides)
    if not (isinstance(period_days, int | float) and period_days > 0):
        raise InputProblem("period_days", f"must be a number > 0, got {period_days!r}")
    if not (0 < interval < 1):
        raise InputProblem("interval", f"must lie between 0 and 1, got {interval!r}")
    if not (isinstance(min_stations_per_class, int) and min_stations_per_class >= 1):
        raise InputProblem(
            "min_stations_per_class", f"must be an integer >= 1, got {min_stations_per_class!r}"
        )
    if road_class is not None and len(road_class) != n:
        raise InputProblem("road_class", f"{len(road_class)} road classes for {n} segments")
    classes = np.array(list(road_class) if road_class is not None else [None] * n, dtype=object)
    positive = rides[rides > 0]
    relative = rides / float(np.median(positive)) if len(positive) else np.full(n, np.nan)

    used: list[dict[str, Any]] = []
    excluded: list[tuple[Any, str]] = []
    for row in station_matches:
        try:
            station_id, seg, counted = row
        except (TypeError, ValueError):
            raise InputProblem(
                "stations",
                f"a station match must be (station_id, segment_index, counted per "
                f"day), got {row!r}",
            ) from None
        try:
            seg, counted = int(seg), float(counted)
        except (TypeError, ValueError):
            raise InputProblem(
                "stations",
                f"station {station_id!r}: segment index {seg!r} or count "
                f"{counted!r} is not a number",
            ) from None
        if seg < 0:
            excluded.append((station_id, "no segment within reach"))
        elif seg >= n:
            raise InputProblem(
                "stations", f"station {station_id!r}: segment index {seg} outside 0..{n - 1}"
            )
        elif not math.isfinite(counted) or counted <= 0:
            excluded.append((station_id, f"counted cyclists {counted!r} per day is not > 0"))
        elif rides[seg] <= 0:
            excluded.append((station_id, "its segment has no crowdsourced rides"))
        else:
            used.append(
                {
                    "station_id": station_id,
                    "segment_index": seg,
                    "road_class": classes[seg],
                    "counted_per_day": counted,
                    "rides_per_day": rides[seg] / period_days,
                    "ratio": counted / (rides[seg] / period_days),
                }
            )

    nan = np.full(n, np.nan)
    if not used:
        return Calibration(
            nan,
            nan.copy(),
            nan.copy(),
            np.full(n, NO_CALIBRATION, dtype=object),
            relative,
            None,
            {},
            None,
            interval,
            used,
            excluded,
            float(period_days),
            min_stations_per_class,
            rides,
            classes,
        )
    log_ratio = np.log([s["ratio"] for s in used])
    st_classes = np.array([s["road_class"] for s in used], dtype=object)
    st_rides = rides[[s["segment_index"] for s in used]]
    fit = _fit(log_ratio, st_classes, st_rides, min_stations_per_class, interval)
    for s in used:
        s["factor"] = fit.factor(s["road_class"])[0]
    factor = np.array([fit.factor(c)[0] for c in classes], dtype=float)
    label = np.array([fit.factor(c)[1] for c in classes], dtype=object)
    estimate = factor * rides / period_days
    half = fit.quantile_scale * np.sqrt(fit.spread**2 + 1 / np.maximum(rides, 1.0))
    return Calibration(
        estimate,
        estimate * np.exp(-half),
        estimate * np.exp(half),
        label,
        relative,
        fit.global_factor,
        fit.by_class,
        fit.spread,
        interval,
        used,
        excluded,
        float(period_days),
        min_stations_per_class,
        rides,
        classes,
    )


#: Share of the segments' days a station's series must cover to calibrate them.
MIN_COVERAGE = 0.5


def counted_per_day(
    daily: Mapping[str, Sequence[Any]], days: np.ndarray
) -> tuple[float | None, float]:
    """A station's mean daily count over the segments' ``days`` and the share of those days its
    series covers: a day's count where it is complete and not flagged, else the model's
    expectation. None when less than :data:`MIN_COVERAGE` of the days is covered.

    :param daily: the station's daily series as the counter analysis gives it
        (``StationResult.to_json()["daily"]``: ``date``, ``count``, ``expected``, ``flag``,
        optional ``complete``).
    """
    dates = np.array(daily["date"], dtype="datetime64[D]")
    if not len(days) or not len(dates):
        return None, 0.0
    pos = np.searchsorted(dates, days)
    inside = (pos < len(dates)) & (dates[np.minimum(pos, len(dates) - 1)] == days)
    coverage = float(inside.mean())
    if coverage < MIN_COVERAGE:
        return None, coverage
    complete = daily.get("complete")
    values = []
    for p in pos[inside]:
        count, expected, flag = daily["count"][p], daily["expected"][p], daily["flag"][p]
        whole = complete is None or complete[p]
        if count is not None and flag is None and whole:
            values.append(count)
        elif expected is not None:
            values.append(expected)
    return (float(np.mean(values)) if values else None), coverage


class NetworkVolumes:
    """Crowdsourced segment volumes aggregated per segment id over the periods given.

    Build with :meth:`from_rows` (one row per segment and period). ``rides_total`` is the sum
    over the periods, ``rides_per_day`` that over all the periods' days (a segment missing
    from a period counts 0 there), ``weekly`` the rides per day per period and segment id;
    ``calibration`` and ``station_match`` are filled by the caller once calibrated.
    """

    @classmethod
    def from_rows(cls, segment_ids, geometries, rides, days, periods, names, road_classes):
        """:param periods: the first day of each row's period ('' when none is given);
        ``days``: the period's length in days (1 without a period)."""
        self = cls()
        order: dict[str, int] = {}
        first_rows: list[int] = []
        for row, sid in enumerate(segment_ids):
            if sid not in order:
                order[sid] = len(order)
                first_rows.append(row)
        n = len(order)
        self.segment_ids = list(order)
        first = np.array(first_rows, dtype=int)
        self.geometries = geometries[first]
        self.lengths = shapely.length(self.geometries)
        self.names = [names[i] for i in first]
        self.road_classes = [road_classes[i] for i in first]
        self.periods = sorted(set(periods))
        self.dated = self.periods != [""]
        self.volume_unit = ("crowdsourced rides per day" if self.dated
                            else "crowdsourced rides per period (the segments have no dates)")
        span = {p: d for p, d in zip(periods, days, strict=True)}
        self.period_days = float(sum(span[p] for p in self.periods))
        covered = [np.arange(np.datetime64(p), np.datetime64(p) + int(span[p]))
                   for p in self.periods if p]
        self.days = (np.unique(np.concatenate(covered)) if covered
                     else np.array([], "datetime64[D]"))
        rows = np.array([order[s] for s in segment_ids])
        self.rides_total = np.bincount(rows, weights=rides, minlength=n)
        self.rides_per_day = self.rides_total / self.period_days
        self.weekly: dict[str, dict[str, float]] = {p: {} for p in self.periods}
        for sid, p, r, d in zip(segment_ids, periods, rides,
                                days, strict=True):
            self.weekly[p][sid] = r / d
        self.calibration: Calibration | None = None
        self.station_match: dict[str, tuple[int, float]] = {}
        return self

    def stability(self, corridors: Sequence[Corridor], top_n: int) -> dict[str, Any]:
        """Week-to-week stability (:func:`rank_stability`) with each period's own top
        corridors and the given corridors held fixed."""
        lengths = dict(zip(self.segment_ids, self.lengths.tolist(), strict=True))
        index = {s: i for i, s in enumerate(self.segment_ids)}
        top_sets = {}
        for period, volumes in self.weekly.items():
            rows = np.array([index[s] for s in volumes])
            week_volume = np.zeros(len(self.segment_ids))
            week_volume[rows] = list(volumes.values())
            week = build_corridors(self.geometries, week_volume, names=self.names, top_n=top_n)
            top_sets[period] = {self.segment_ids[i] for c in week for i in c.segments}
        fixed = [{self.segment_ids[i] for i in c.segments} for c in corridors]
        return rank_stability(self.weekly, top_sets=top_sets, corridors=fixed,
                              segment_lengths=lengths)


# --- corridors ---------------------------------------------------------------------------------


@dataclass
class Corridor:
    """A continuous, mostly straight run of well-used segments (see :func:`build_corridors`).

    ``geometry``: LineString where the run is continuous (always, unless snapping failed);
    ``segments``: indices into the input arrays in order along the line; volumes are the input's
    unit (e.g. rides per week), ``ride_km`` = sum of volume x length in km; ``volume_mean`` is
    length-weighted; ``names``: the most frequent names along it by length (up to 3, each on at
    least 10 % of the length).
    """

    rank: int
    geometry: shapely.Geometry
    segments: np.ndarray
    segment_geometries: np.ndarray
    segment_volumes: np.ndarray
    length_m: float
    ride_km: float
    volume_mean: float
    volume_min: float
    volume_max: float
    names: list[str]

    def properties(self) -> dict[str, Any]:
        """Plain values for a GeoJSON feature (geometry apart)."""
        return {
            "rank": self.rank,
            "length_m": round(self.length_m, 1),
            "ride_km": round(self.ride_km, 3),
            "volume_mean": round(self.volume_mean, 2),
            "volume_min": self.volume_min,
            "volume_max": self.volume_max,
            "names": list(self.names),
            "segment_count": len(self.segments),
        }


def _endpoint_nodes(lines: np.ndarray, tolerance_m: float) -> tuple[np.ndarray, ...]:
    """Node id per end (starts 0..n-1, ends n..2n-1), node coordinates (mean of the snapped
    ends), end coordinates, first/last position of each line in ``coords``, all coordinates and
    their line index."""
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    last = np.r_[first[1:] - 1, len(owner) - 1]
    ends = np.concatenate([coords[first], coords[last]])
    pairs = cKDTree(ends).query_pairs(r=tolerance_m, output_type="ndarray")
    m = len(ends)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    _, node = connected_components(graph, directed=False)
    counts = np.bincount(node)
    node_xy = np.column_stack([np.bincount(node, ends[:, 0]), np.bincount(node, ends[:, 1])])
    node_xy /= counts[:, None]
    return node, node_xy, ends, np.stack([first, last]), coords, owner


def _outgoing_bearings(lines: np.ndarray, ends: np.ndarray, reach_m: float) -> np.ndarray:
    """Angle (radians) of each end's direction into its line, measured over ``reach_m``."""
    length = shapely.length(lines)
    reach = np.minimum(reach_m, length / 2)
    inner = shapely.line_interpolate_point(
        np.concatenate([lines, lines]), np.concatenate([reach, length - reach])
    )
    d = shapely.get_coordinates(inner) - ends
    return np.arctan2(d[:, 1], d[:, 0])


def _candidate_pairs(node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of ends at the same node (vectorised over offsets in the node-sorted order)."""
    order = np.argsort(node, kind="stable")
    sorted_node = node[order]
    max_degree = int(np.bincount(node).max()) if len(node) else 0
    a_parts, b_parts = [], []
    for d in range(1, max_degree):
        same = sorted_node[:-d] == sorted_node[d:]
        a_parts.append(order[:-d][same])
        b_parts.append(order[d:][same])
    if not a_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _match_greedily(a: np.ndarray, b: np.ndarray, score: np.ndarray, n_ends: int) -> np.ndarray:
    """Pairs accepted by best-score-first matching (each end at most once).

    Rounds of mutual best choice: a pair is accepted when it is the best remaining pair of both
    its ends (ties to the lower pair number), which is what processing all pairs in score order
    accepts, but vectorised.
    """
    accepted = np.zeros(len(a), dtype=bool)
    alive = np.ones(len(a), dtype=bool)
    used = np.zeros(n_ends, dtype=bool)
    while alive.any():
        pid = np.flatnonzero(alive)
        end = np.concatenate([a[pid], b[pid]])
        cand = np.concatenate([pid, pid])
        order = np.lexsort((cand, score[cand], end))
        end, cand = end[order], cand[order]
        first = np.r_[True, end[1:] != end[:-1]]
        best = np.full(n_ends, -1, dtype=np.int64)
        best[end[first]] = cand[first]
        win = pid[(best[a[pid]] == pid) & (best[b[pid]] == pid)]
        accepted[win] = True
        used[a[win]] = True
        used[b[win]] = True
        alive &= ~(used[a] | used[b])
    return accepted


def build_corridors(
    segment_lines: Any,
    volume: Any,
    *,
    names: Sequence[str | None] | None = None,
    top_n: int | None = 20,
    min_volume: float | None = None,
    snap_tolerance_m: float = 1.0,
    max_deflection_deg: float = 40.0,
    volume_weight_deg: float = 10.0,
    bearing_length_m: float = 10.0,
    max_bend_deg: float = 120.0,
    fold_window_m: float = 100.0,
    min_straightness: float = 0.5,
) -> list[Corridor]:
    """The most-used corridors: strokes of well-used segments, ranked by ride-km.

    1. Segment ends closer than ``snap_tolerance_m`` become one node.
    2. Only segments with ``volume >= min_volume`` take part (default: the length-weighted
       median volume, so corridors run over the busier half of the network).
    3. At every node, pairs of taking-part segment ends are scored by their deflection angle
       (0 = straight on; directions measured over ``bearing_length_m`` from the node) plus
       ``volume_weight_deg`` x |ln(volume ratio)| (the flow continues where the volumes match).
       At junctions (3+ segment ends in the whole network) pairs deflecting by more than
       ``max_deflection_deg`` are not joined; at plain vertices (2 ends) the street goes on
       round any bend up to ``max_bend_deg`` (hairpins, such as the two sides of a dual
       carriageway meeting at a dead end, are not joined). Pairs are joined best score first,
       each segment end at most once (Jiang's "every-best-fit" strokes, with the volume term).
    4. A joined chain that folds back on itself is cut: at every joint, the straight distance
       between the points ``fold_window_m`` before and after it along the chain must be at
       least ``min_straightness`` x the path between them (two parallel streets linked by a
       short connector would otherwise become one U-shaped corridor; a right-angle corner
       keeps 0.71).
    5. Joined segments form corridors (connected components); ride-km = sum volume x length /
       1000; the ``top_n`` (all when None) are returned, rank 1 first, with merged geometry.

    :param volume: per segment, >= 0, in any per-period unit (rides per week for DB Rad+).
    :param names: per segment street name (None = unknown) for the corridor's ``names``.
    :raises InputProblem: bad segments or volumes (see :func:`check_segments`), bad parameters.
    """
    numbers = {
        "snap_tolerance_m": snap_tolerance_m,
        "max_deflection_deg": max_deflection_deg,
        "volume_weight_deg": volume_weight_deg,
        "bearing_length_m": bearing_length_m,
        "max_bend_deg": max_bend_deg,
        "fold_window_m": fold_window_m,
        "min_straightness": min_straightness,
    }
    for pname, value in numbers.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InputProblem(pname, f"must be a number >= 0, got {value!r}")
    if top_n is not None and not (isinstance(top_n, int) and top_n >= 1):
        raise InputProblem("top_n", f"must be an integer >= 1, got {top_n!r}")
    lines = (
        np.asarray(segment_lines, dtype=object)
        if not isinstance(segment_lines, np.ndarray)
        else segment_lines
    )
    checked = check_segments(lines, volume)
    lines, vol = checked.lines, checked.volume
    n = len(lines)
    if names is not None and len(names) != n:
        raise InputProblem("names", f"{len(names)} names for {n} segments")
    length = shapely.length(lines)
    if min_volume is None:
        order = np.argsort(vol)
        cum = np.cumsum(length[order])
        min_volume = float(vol[order][np.searchsorted(cum, cum[-1] / 2)])
    elif not (isinstance(min_volume, int | float) and math.isfinite(min_volume)):
        raise InputProblem("min_volume", f"must be a number, got {min_volume!r}")
    heavy = (vol >= min_volume) & (vol > 0)

    node, node_xy, ends, first_last, coords, owner = _endpoint_nodes(lines, snap_tolerance_m)
    # snapped geometries: first/last coordinate moved onto the node, so chains merge
    snapped = _snapped_lines(np.arange(n), n, node, node_xy, first_last, coords, owner)
    # a segment shorter than the snap tolerance collapses onto its node: it is a point of the
    # network, not a part of any corridor
    heavy &= shapely.length(snapped) > 0
    degree = np.bincount(node)
    a, b = _candidate_pairs(node)
    seg_a, seg_b = a % n, b % n
    keep = (seg_a != seg_b) & heavy[seg_a] & heavy[seg_b]
    a, b, seg_a, seg_b = a[keep], b[keep], seg_a[keep], seg_b[keep]
    bearing = _outgoing_bearings(lines, ends, bearing_length_m)
    deflection = np.degrees(np.abs((bearing[a] - bearing[b]) % (2 * np.pi) - np.pi))
    junction = degree[node[a]] >= 3
    keep = np.where(junction, deflection <= max_deflection_deg, deflection <= max_bend_deg)
    a, b, seg_a, seg_b, deflection = a[keep], b[keep], seg_a[keep], seg_b[keep], deflection[keep]
    score = deflection + volume_weight_deg * np.abs(np.log(vol[seg_a] / vol[seg_b]))
    joined = _match_greedily(a, b, score, 2 * n)
    a, seg_a, seg_b = a[joined], seg_a[joined], seg_b[joined]
    label = _components(seg_a, seg_b, n)
    if len(a) and min_straightness > 0:
        fold = _folds(snapped, label, seg_a, node_xy[node[a]], fold_window_m, min_straightness)
        if fold.any():
            seg_a, seg_b = seg_a[~fold], seg_b[~fold]
            label = _components(seg_a, seg_b, n)

    ride = vol * length
    ride_sum = np.bincount(label, ride)
    heavy_label = np.bincount(label, heavy) > 0  # a component is all heavy or one light segment
    ride_sum[~heavy_label] = -1.0
    ranked = np.argsort(-ride_sum, kind="stable")
    ranked = ranked[ride_sum[ranked] > 0]
    if top_n is not None:
        ranked = ranked[:top_n]
    if len(ranked) == 0:
        return []
    members_of = _members(label, ranked)
    corridors = []
    for rank, comp in enumerate(ranked, start=1):
        segs = members_of[comp]
        parts = snapped[segs]
        merged = shapely.line_merge(shapely.multilinestrings(parts))
        if merged.geom_type == "LineString":
            mid = shapely.line_interpolate_point(parts, 0.5, normalized=True)
            along = shapely.line_locate_point(merged, mid)
            order = np.argsort(along, kind="stable")
            segs, parts = segs[order], parts[order]
        seg_len, seg_vol = length[segs], vol[segs]
        total = float(seg_len.sum())
        corridors.append(
            Corridor(
                rank=rank,
                geometry=merged,
                segments=checked.index[segs],
                segment_geometries=parts,
                segment_volumes=seg_vol,
                length_m=total,
                ride_km=float(ride_sum[comp]) / 1000.0,
                volume_mean=float(ride_sum[comp]) / total,
                volume_min=float(seg_vol.min()),
                volume_max=float(seg_vol.max()),
                names=_frequent_names(names, segs, seg_len) if names is not None else [],
            )
        )
    return corridors


def _components(seg_a: np.ndarray, seg_b: np.ndarray, n: int) -> np.ndarray:
    """Corridor label per segment: connected components of the joins."""
    graph = coo_matrix((np.ones(len(seg_a)), (seg_a, seg_b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _folds(
    snapped: np.ndarray,
    label: np.ndarray,
    seg_a: np.ndarray,
    joint_xy: np.ndarray,
    window_m: float,
    min_straightness: float,
) -> np.ndarray:
    """Joints where their chain folds back (see :func:`build_corridors`, step 4)."""
    sizes = np.bincount(label)
    chains = np.flatnonzero(sizes > 1)
    compact = np.full(len(sizes), -1, dtype=np.int64)
    compact[chains] = np.arange(len(chains))
    segs = np.flatnonzero(sizes[label] > 1)
    segs = segs[np.argsort(label[segs], kind="stable")]
    merged = shapely.line_merge(
        shapely.multilinestrings(snapped[segs], indices=compact[label[segs]])
    )
    chain = merged[compact[label[seg_a]]]
    simple = shapely.get_type_id(chain) == shapely.GeometryType.LINESTRING
    fold = np.zeros(len(seg_a), dtype=bool)
    chain = chain[simple]
    total = shapely.length(chain)
    at = shapely.line_locate_point(chain, shapely.points(joint_xy[simple]))
    lo, hi = np.maximum(at - window_m, 0.0), np.minimum(at + window_m, total)
    chord = shapely.distance(
        shapely.line_interpolate_point(chain, lo), shapely.line_interpolate_point(chain, hi)
    )
    fold[simple] = chord < min_straightness * (hi - lo)
    return fold


def _members(label: np.ndarray, comps: np.ndarray) -> dict[int, np.ndarray]:
    """Segment indices per component, for the given components only."""
    wanted = np.zeros(label.max() + 1, dtype=bool)
    wanted[comps] = True
    segs = np.flatnonzero(wanted[label])
    segs = segs[np.argsort(label[segs], kind="stable")]
    labs = label[segs]
    cuts = np.flatnonzero(np.r_[True, labs[1:] != labs[:-1]])
    groups = np.split(segs, cuts[1:])
    return {int(labs[c]): g for c, g in zip(cuts, groups, strict=True)}


def _snapped_lines(
    members: np.ndarray,
    n: int,
    node: np.ndarray,
    node_xy: np.ndarray,
    first_last: np.ndarray,
    coords: np.ndarray,
    owner: np.ndarray,
) -> np.ndarray:
    first, last = first_last[0][members], first_last[1][members]
    counts = last - first + 1
    take = np.repeat(first, counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    sub = coords[take].copy()
    index = np.repeat(np.arange(len(members)), counts)
    starts = np.cumsum(counts) - counts
    sub[starts] = node_xy[node[members]]
    sub[starts + counts - 1] = node_xy[node[members + n]]
    return shapely.linestrings(sub, indices=index)


def _frequent_names(names: Sequence[str | None], segs: np.ndarray, seg_len: np.ndarray) -> list:
    by_length: dict[str, float] = defaultdict(float)
    for s, seg_length in zip(segs, seg_len, strict=True):
        name = names[int(s)]
        if name:
            by_length[str(name)] += float(seg_length)
    total = float(seg_len.sum())
    ranked = sorted(by_length.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, metres in ranked[:3] if metres >= 0.1 * total]


# --- official network ---------------------------------------------------------------------------


def _official_parts(
    official_lines: Any, official_names: Sequence[str | None] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The official network cut into two-point lines, and the input feature of each."""
    raw = np.asarray(official_lines, dtype=object)
    if raw.ndim != 1:
        raw = raw.ravel()
    if official_names is not None and len(official_names) != len(raw):
        raise InputProblem(
            "official_names", f"{len(official_names)} names for {len(raw)} official lines"
        )
    raw = np.where(shapely.is_geometry(raw), raw, None)
    missing = np.flatnonzero(shapely.is_missing(raw) | shapely.is_empty(raw))
    if len(missing):
        raise InputProblem(
            "official_routes",
            "features without geometry: " + _listing([f"feature {i}" for i in missing]),
        )
    parts, part_of = shapely.get_parts(raw, return_index=True)
    is_line = shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING
    if not is_line.all():
        bad = sorted({int(part_of[i]) for i in np.flatnonzero(~is_line)})
        raise InputProblem(
            "official_routes",
            "official routes must be (Multi)LineStrings; not "
            "so for " + _listing([f"feature {i}" for i in bad]),
        )
    if len(parts):
        _check_lines(parts, "official_routes")
    # two-point pieces: tight STRtree envelopes and cheap distances (routes are kilometres long)
    coords, owner = shapely.get_coordinates(parts, return_index=True)
    inner = np.flatnonzero(owner[1:] == owner[:-1])
    pieces = (
        shapely.linestrings(
            np.stack([coords[inner], coords[inner + 1]], axis=1).reshape(-1, 2),
            indices=np.repeat(np.arange(len(inner)), 2),
        )
        if len(inner)
        else np.empty(0, dtype=object)
    )
    return pieces, part_of[owner[inner]]


def length_near(
    lines: Any,
    official_lines: Any,
    *,
    buffer_m: float = 20.0,
    step_m: float = 1.0,
    official_names: Sequence[str | None] | None = None,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Length (m) of each line within ``buffer_m`` of any official line, and per line the length
    near each official name.

    Measured at the midpoints of equal pieces of at most ``step_m`` along each line (exact
    distances, no buffer polygons; the length is right to about ``step_m`` per entry into or exit
    from the buffer), which is fast for whole networks.
    """
    lines = np.asarray(lines, dtype=object)
    parts, part_of = _official_parts(official_lines, official_names)
    n = len(lines)
    by_name: list[dict[str, float]] = [{} for _ in range(n)]
    if n == 0 or len(parts) == 0:
        return np.zeros(n), by_name
    length = shapely.length(lines)
    pieces = np.maximum(1, np.ceil(length / step_m)).astype(np.int64)
    owner = np.repeat(np.arange(n), pieces)
    piece = np.repeat(length / pieces, pieces)
    within_line = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    points = shapely.line_interpolate_point(lines[owner], (within_line + 0.5) * piece)
    pi, qi = shapely.STRtree(parts).query(points, predicate="dwithin", distance=buffer_m)
    near = np.zeros(len(points), dtype=bool)
    near[pi] = True
    on = np.bincount(owner, piece * near, minlength=n)
    if official_names is not None and len(pi):
        names = np.array([str(x) if x else "" for x in official_names], dtype=object)[part_of[qi]]
        seen: set[tuple[int, str]] = set()
        for p, name in zip(pi.tolist(), names.tolist(), strict=True):
            if name and (p, name) not in seen:  # a point near two parts of one route: once
                seen.add((p, name))
                row = by_name[owner[p]]
                row[name] = row.get(name, 0.0) + float(piece[p])
    return on, by_name


def official_overlap(
    corridors: Sequence[Corridor],
    official_lines: Any,
    *,
    official_names: Sequence[str | None] | None = None,
    buffer_m: float = 20.0,
    heavy_share: float = 0.5,
    step_m: float = 1.0,
) -> dict[str, Any]:
    """How much of the corridors lies on an official route network (e.g. Hamburg's Velorouten).

    A corridor's part within ``buffer_m`` of an official line counts as on the network (the
    buffer absorbs the offset between a crowdsourced street axis and a route drawn on a cycle
    track or on the other side of the street); measured along the corridor's segments in steps
    of ``step_m`` (see :func:`length_near`).

    :returns: ``corridors``: per corridor rank, ``share_on_official`` (of its length, 0..1),
        ``ride_km_on_official`` (segment by segment), ``official_names`` (names of the official
        lines it runs along, by length, each along >= 10 % of the corridor);
        ``ride_km_share_on_official`` and ``length_share_on_official`` over all given
        corridors; ``not_on_official``: the corridors with a share below ``heavy_share``.
    :raises InputProblem: ``official_routes`` with missing or non-line geometries, bad
        ``buffer_m`` / ``step_m``.
    """
    for pname, value in (("buffer_m", buffer_m), ("step_m", step_m)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise InputProblem(pname, f"must be a number > 0, got {value!r}")
    sizes = [len(c.segment_geometries) for c in corridors]
    segments = (
        np.concatenate([c.segment_geometries for c in corridors])
        if corridors
        else np.empty(0, dtype=object)
    )
    on, by_name = length_near(
        segments, official_lines, buffer_m=buffer_m, step_m=step_m, official_names=official_names
    )
    rows = []
    start = 0
    for c, size in zip(corridors, sizes, strict=True):
        on_len = on[start : start + size]
        names: dict[str, float] = defaultdict(float)
        for row in by_name[start : start + size]:
            for name, metres in row.items():
                names[name] += metres
        start += size
        seg_len = shapely.length(c.segment_geometries)
        share = float(on_len.sum() / seg_len.sum()) if seg_len.sum() > 0 else 0.0
        ranked = sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append(
            {
                "rank": c.rank,
                "length_m": c.length_m,
                "ride_km": c.ride_km,
                "share_on_official": min(1.0, share),
                "ride_km_on_official": float((c.segment_volumes * on_len).sum()) / 1000.0,
                "official_names": [n for n, metres in ranked if metres >= 0.1 * c.length_m],
                "names": list(c.names),
            }
        )
    total_ride = sum(r["ride_km"] for r in rows)
    total_len = sum(r["length_m"] for r in rows)
    return {
        "buffer_m": buffer_m,
        "corridors": rows,
        "ride_km_share_on_official": (
            sum(r["ride_km_on_official"] for r in rows) / total_ride if total_ride else None
        ),
        "length_share_on_official": (
            sum(r["share_on_official"] * r["length_m"] for r in rows) / total_len
            if total_len
            else None
        ),
        "not_on_official": [r for r in rows if r["share_on_official"] < heavy_share],
    }


# --- stability ---------------------------------------------------------------------------------


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return float(spearmanr(x, y).statistic)


def rank_stability(
    weeks: Mapping[str, Mapping[Hashable, float]],
    *,
    top_sets: Mapping[str, Collection[Hashable]] | None = None,
    corridors: Sequence[Collection[Hashable]] | None = None,
    segment_lengths: Mapping[Hashable, float] | None = None,
) -> dict[str, Any]:
    """Week-to-week stability of volumes and of the most-used corridors.

    :param weeks: week label -> {segment id: volume}; weeks are compared in sorted label order
        (ISO dates sort by time).
    :param top_sets: week label -> ids of the segments in that week's top corridors; gives the
        Jaccard overlap of consecutive weeks' sets, length-weighted with ``segment_lengths``.
    :param corridors: segment-id sets of fixed corridors (e.g. the top corridors across all
        weeks); gives their ride-km per week (length-weighted with ``segment_lengths``, else
        summed volume) and the Spearman correlation of that ranking between consecutive weeks.
    :returns: ``pairs`` (week_a, week_b, common segments, segment Spearman, top Jaccard,
        corridor Spearman), means over pairs, ``corridor_volume_by_week`` when ``corridors``.
        A correlation is None when fewer than 3 values or no variation.
    :raises InputProblem: ``weeks`` with fewer than 2 weeks or negative / non-numeric volumes.
    """
    labels = sorted(weeks)
    if len(labels) < 2:
        raise InputProblem("weeks", f"rank stability needs at least 2 weeks, got {len(labels)}")
    for w in labels:
        _volumes(list(weeks[w].values()), len(weeks[w]), f"weeks[{w}]", list(weeks[w].keys()))
    length = segment_lengths or {}
    corridor_volume = None
    if corridors is not None:
        corridor_volume = {
            w: [sum(weeks[w].get(s, 0.0) * length.get(s, 1.0) for s in segs) for segs in corridors]
            for w in labels
        }
    pairs = []
    for wa, wb in itertools.pairwise(labels):
        common = sorted(set(weeks[wa]) & set(weeks[wb]), key=str)
        xa = np.array([weeks[wa][s] for s in common], dtype=float)
        xb = np.array([weeks[wb][s] for s in common], dtype=float)
        row: dict[str, Any] = {
            "week_a": wa,
            "week_b": wb,
            "common_segments": len(common),
            "segment_spearman": _spearman(xa, xb),
        }
        if top_sets is not None:
            sa, sb = set(top_sets.get(wa, ())), set(top_sets.get(wb, ()))
            union = sum(length.get(s, 1.0) for s in sa | sb)
            row["top_jaccard"] = sum(length.get(s, 1.0) for s in sa & sb) / union if union else None
        if corridor_volume is not None:
            row["corridor_spearman"] = _spearman(
                np.array(corridor_volume[wa]), np.array(corridor_volume[wb])
            )
        pairs.append(row)

    def mean(key: str) -> float | None:
        values = [p[key] for p in pairs if p.get(key) is not None]
        return float(np.mean(values)) if values else None

    out: dict[str, Any] = {
        "weeks": labels,
        "pairs": pairs,
        "mean_segment_spearman": mean("segment_spearman"),
    }
    if top_sets is not None:
        out["mean_top_jaccard"] = mean("top_jaccard")
    if corridor_volume is not None:
        out["mean_corridor_spearman"] = mean("corridor_spearman")
        out["corridor_volume_by_week"] = corridor_volume
    return out
