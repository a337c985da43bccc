"""Inputs of ``cycling-volumes``: counts, stations, crowdsourced segments, official routes.

Each reader accepts what a client or a city platform has at hand and returns plain columns
in the analysis CRS (EPSG:25832), plus what it repaired and rejected, each with a reason
naming the record, so the process can report them:

* **counts**: a FeatureCollection or collection (``{"collection": "bike-counts"}``) of
  records ``station_id``, ``date`` (daily) or ``datetime`` (sub-daily), ``count``, optional
  ``direction`` and the day's weather (``min_temperature_c``, ``max_temperature_c``,
  ``precipitation_mm``, ``cloud_cover_percent``, ``sunshine_hours``); a Munich-format CSV as a
  string (see :mod:`cut_processes.io.counters`); ``{"href": ...}`` to either; or a SensorThings
  service ``{"sensorthings": root, "layer_name": ..., "from": ..., "to": ...}`` (allow-listed).
  Imported records (``result``, ``phenomenon_start``, ``thing_id``) map onto the same names.
* **stations**: Points with ``id`` (or ``zaehlstelle``/``name``), optional ``name``,
  ``federal_state``; inline, by collection, by href, or a Munich stations CSV string. A Point
  holding several positions within ``point_tolerance_m`` is repaired to their mean (Hamburg's
  station file has three such), further apart it is refused.
* **segments**: LineStrings with ``rides`` (or DB Rad+'s ``anzahl``), ``week_start`` /
  ``week_end`` (or ``von`` / ``bis``), optional ``segment_id``, ``name``, ``road_class``,
  ``speed_kmh``; one record per segment and period. ``segment_id`` defaults to the DB Rad+ id
  derived from the geometry, so the same street segment matches across weeks.
* **official routes**: (Multi)LineStrings, attributes kept for naming.

Inline GeoJSON is CRS84 unless it carries the legacy ``crs`` member (as Hamburg's exports
do); coordinates outside longitude/latitude ranges in a CRS84 input are refused with a hint,
since that is the usual sign of projected coordinates without a ``crs`` member.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from cut_processes.io.counters import WEATHER_FIELDS
from cut_processes.io.inputs import (
    ANALYSIS_CRS,
    FeatureSet,
    InputProblem,
    ResolveContext,
    check_feature_crs,
    check_href_allowed,
    collection_crs,
    local_path,
    resolve_features,
)
from cut_processes.io.records import (
    UnreadableFileError,
    parse_date,
    parse_datetime,
    parse_number,
    read_geometry,
    transformer,
)

#: How many repaired/rejected records a result lists by reason (all are counted).
LISTED = 20


@dataclass
class Report:
    """Records repaired or rejected while reading one input, each with a reason."""

    repaired: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "repaired": len(self.repaired),
            "rejected": len(self.rejected),
            "repairs": self.repaired[:LISTED],
            "rejects": self.rejected[:LISTED],
        }


# -- inline GeoJSON, feature by feature ------------------------------------------------------


def _inline_features(
    name: str,
    collection: dict[str, Any],
    expected: set[str],
    report: Report,
    *,
    point_tolerance_m: float = 1.0,
    geometry_required: bool = True,
) -> FeatureSet:
    """An inline FeatureCollection read feature by feature with repairs (analysis CRS)."""
    features = collection.get("features")
    if not isinstance(features, list):
        raise InputProblem(name, "the FeatureCollection has no 'features' list")
    srid = collection_crs(name, collection)
    to_target = transformer(f"EPSG:{srid}", ANALYSIS_CRS) if srid != ANALYSIS_CRS else None
    ids, geoms, props = [], [], []
    for i, item in enumerate(features):
        if not isinstance(item, dict) or item.get("type") != "Feature":
            raise InputProblem(name, f"feature {i} is not a GeoJSON Feature")
        properties = item.get("properties") or {}
        if not isinstance(properties, dict):
            raise InputProblem(name, f"feature {i}: 'properties' must be an object")
        fid = item.get("id", properties.get("id", i))
        check_feature_crs(name, fid, item, srid)
        geometry = item.get("geometry")
        if geometry is None:
            if geometry_required:
                raise InputProblem(name, f"feature {fid!r} has no geometry")
            ids.append(fid)
            geoms.append(None)
            props.append(properties)
            continue
        try:
            geom, note = read_geometry(
                geometry, to_target, expected=expected, point_tolerance_m=point_tolerance_m
            )
        except ValueError as err:
            raise InputProblem(name, f"feature {fid!r}: {err}") from None
        if note:
            report.repaired.append(f"feature {fid!r}: {note}")
        ids.append(fid)
        geoms.append(geom)
        props.append(properties)
    if not ids:
        raise InputProblem(name, "no features: the collection is empty")
    return FeatureSet(ids, np.array(geoms, dtype=object), props, ANALYSIS_CRS)


def _features(
    name: str,
    value: Any,
    context: ResolveContext,
    expected: set[str],
    report: Report,
    **options: Any,
) -> FeatureSet:
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        return _inline_features(name, value, expected, report, **options)
    features = resolve_features(name, value, context)
    geoms = features.geometries
    for i, geom in enumerate(geoms):
        if geom is None:
            if options.get("geometry_required", True):
                raise InputProblem(name, f"feature {features.ids[i]!r} has no geometry")
        elif geom.geom_type not in expected:
            raise InputProblem(
                name,
                f"feature {features.ids[i]!r} is a {geom.geom_type}; expected "
                f"{' or '.join(sorted(expected))}",
            )
    return features


def _csv_text(name: str, text: str, reader: Any, **options: Any) -> Any:
    if not text.strip():
        raise InputProblem(name, "the CSV text is empty")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        try:
            return reader([path], **options)
        except UnreadableFileError as err:
            raise InputProblem(name, err.problem) from None


# -- stations --------------------------------------------------------------------------------


@dataclass
class Stations:
    """Counting stations: ids, names, federal states (None when unknown), points."""

    ids: list[str]
    names: list[str | None]
    states: list[str | None]
    points: np.ndarray
    properties: list[dict[str, Any]]
    report: Report

    def __len__(self) -> int:
        return len(self.ids)


def read_stations(
    value: Any, context: ResolveContext, *, point_tolerance_m: float = 50.0
) -> Stations:
    """The ``stations`` input (see the module docstring)."""
    report = Report()
    if isinstance(value, str):
        from cut_processes.io.counters import read_munich_stations

        result = _csv_text("stations", value, read_munich_stations)
        for ref, reason in result.rejected:
            report.rejected.append(f"{ref.split(' ', 1)[-1]}: {reason}")
        collection = {
            "type": "FeatureCollection",
            "features": result.features,
            "crs": {"type": "name", "properties": {"name": f"EPSG:{result.srid}"}},
        }
        features = _inline_features("stations", collection, {"Point"}, report)
    else:
        features = _features(
            "stations", value, context, {"Point"}, report, point_tolerance_m=point_tolerance_m
        )
    ids: list[str] = []
    seen: dict[str, int] = {}
    names, states = [], []
    for i, (fid, props) in enumerate(zip(features.ids, features.properties, strict=True)):
        sid = props.get("id", props.get("zaehlstelle", fid))
        if sid is None:
            raise InputProblem("stations", f"feature {i} has no id")
        sid = str(sid)
        if sid in seen:
            raise InputProblem(
                "stations", f"station id {sid!r} appears twice (features {seen[sid]} and {i})"
            )
        seen[sid] = i
        ids.append(sid)
        names.append(props.get("name") or props.get("zaehlstelle_lang"))
        state = props.get("federal_state")
        states.append(str(state).upper().removeprefix("DE-") if state else None)
    return Stations(ids, names, states, features.geometries, features.properties, report)


# -- counts ----------------------------------------------------------------------------------


@dataclass
class Counts:
    """Count records (station_id, date or datetime, count, direction, weather)."""

    records: list[dict[str, Any]]
    report: Report
    #: Stations that came with the counts (SensorThings Things), else None.
    stations: Stations | None = None


def read_counts(value: Any, context: ResolveContext) -> Counts:
    """The ``counts`` input (see the module docstring)."""
    report = Report()
    if isinstance(value, str):
        from cut_processes.io.counters import read_munich_counts

        result = _csv_text("counts", value, read_munich_counts)
        for ref, reason in result.rejected:
            report.rejected.append(f"{ref.split(' ', 1)[-1]}: {reason}")
        records = _screened([f["properties"] for f in result.features], report)
        if not records:
            raise InputProblem(
                "counts", "the CSV holds no usable count: " + "; ".join(report.rejected[:3])
            )
        return Counts(records, report)
    if isinstance(value, dict) and "sensorthings" in value:
        return _sensorthings_counts(value, context, report)
    if isinstance(value, dict) and "href" in value:
        href = str(value["href"])
        path = local_path("counts", href, context)
        if path is not None and path.suffix.lower() == ".csv":
            return read_counts(path.read_text(encoding="utf-8-sig"), context)
    features = _features("counts", value, context, {"Point"}, report, geometry_required=False)
    records = [_count_record(fid, props) for fid, props in
               zip(features.ids, features.properties, strict=True)]
    records = _screened(records, report)
    if not records:
        raise InputProblem("counts", "no usable count: " + "; ".join(report.rejected[:3]))
    return Counts(records, report)


#: Plausible ranges of the daily weather (values outside are sensor errors or sentinels such
#: as -999: treated as missing and reported).
WEATHER_RANGES = {
    "min_temperature_c": (-50.0, 50.0),
    "max_temperature_c": (-50.0, 50.0),
    "precipitation_mm": (0.0, 500.0),
    "cloud_cover_percent": (0.0, 100.0),
    "sunshine_hours": (0.0, 24.0),
}
#: Counts on days outside this range are rejected (a mistyped year would otherwise stretch a
#: station's daily grid over centuries).
FIRST_YEAR = 1990


def _last_day() -> str:
    from datetime import date, timedelta

    return (date.today() + timedelta(days=366)).isoformat()


def _screened(records: list[dict[str, Any]], report: Report) -> list[dict[str, Any]]:
    """Records with a day in [1990, next year] and plausible weather (else weather missing)."""
    last = _last_day()
    kept, implausible = [], dict.fromkeys(WEATHER_RANGES, 0)
    for record in records:
        day = record.get("date") or (record.get("datetime") or "")[:10]
        if not (f"{FIRST_YEAR}-01-01" <= day <= last):
            report.rejected.append(
                f"station {record['station_id']} on {day}: the day lies outside "
                f"{FIRST_YEAR}-01-01..{last} (a mistyped year?)")
            continue
        for key, (low, high) in WEATHER_RANGES.items():
            value = record.get(key)
            if value is not None and not (low <= value <= high):
                if implausible[key] < 3:
                    report.repaired.append(
                        f"station {record['station_id']} on {day}: {key} {value} outside "
                        f"{low:g}..{high:g}, taken as missing")
                implausible[key] += 1
                record[key] = None
        kept.append(record)
    for key, n in implausible.items():
        if n > 3:
            report.repaired.append(f"... {key} outside its range on {n} records in all")
    return kept


def _moment(value: Any) -> str | None:
    """ISO 8601 UTC text of a moment; without an offset it is local time (Europe/Berlin)."""
    try:
        return parse_datetime(value, assume_utc=False)
    except ValueError as err:
        if "without a UTC offset" not in str(err):
            raise
    from datetime import datetime
    from zoneinfo import ZoneInfo

    naive = datetime.fromisoformat(str(value).strip().replace(" ", "T", 1))
    return parse_datetime(naive.replace(tzinfo=ZoneInfo("Europe/Berlin")).isoformat())


def _count_record(fid: Any, props: dict[str, Any]) -> dict[str, Any]:
    """One count record in the analysis's names; unreadable values name the record."""
    sid = props.get("station_id", props.get("thing_id", props.get("zaehlstelle")))
    if sid is None or str(sid).strip() == "":
        raise InputProblem("counts", f"record {fid!r} has no station_id")
    record: dict[str, Any] = {"station_id": str(sid)}
    raw = props.get("count", props.get("result", props.get("gesamt")))
    try:
        count = parse_number(raw)
    except ValueError:
        raise InputProblem("counts", f"record {fid!r}: count {raw!r} is not a number") from None
    if count is None:
        raise InputProblem("counts", f"record {fid!r} (station {sid}) has no count")
    if count < 0:
        raise InputProblem(
            "counts", f"record {fid!r}: station {sid} has a negative count ({raw!r})"
        )
    record["count"] = count
    moment = props.get("datetime", props.get("phenomenon_start"))
    try:
        if moment is not None:
            record["datetime"] = _moment(moment)
            end = props.get("phenomenon_end")
            if end is not None:
                record["datetime_end"] = _moment(end)
        else:
            record["date"] = parse_date(props.get("date", props.get("datum")))
    except ValueError as err:
        raise InputProblem("counts", f"record {fid!r} (station {sid}): {err}") from None
    if record.get("date") is None and record.get("datetime") is None:
        raise InputProblem("counts", f"record {fid!r} (station {sid}) has no date")
    direction = props.get("direction")
    if direction is not None:
        if isinstance(direction, bool) or not isinstance(direction, int | str):
            raise InputProblem(
                "counts", f"record {fid!r}: direction {direction!r} must be a number or a name"
            )
        record["direction"] = direction
    for key in WEATHER_FIELDS:
        try:
            record[key] = parse_number(props.get(key))
        except ValueError:
            raise InputProblem(
                "counts", f"record {fid!r}: {key} {props.get(key)!r} is not a number"
            ) from None
    return record


def _sensorthings_counts(value: dict[str, Any], context: ResolveContext, report: Report) -> Counts:
    from cut_processes.io.sensorthings import SensorThingsError, read_sensorthings

    root = str(value["sensorthings"])
    check_href_allowed("counts", root, context)
    layers = value.get("layer_name")
    if isinstance(layers, str):
        layers = [layers]
    try:
        result = read_sensorthings(
            root,
            layer_names=layers,
            time_from=value.get("from"),
            time_to=value.get("to"),
            http_get=context_http_get(context),
        )
    except SensorThingsError as err:
        raise InputProblem("counts", str(err)) from None
    for ref, reason in result.rejected:
        report.rejected.append(f"{ref}: {reason}")
    if not result.features:
        raise InputProblem("counts", f"no observations read from {root}")
    records, located = [], {}
    for feat in result.features:
        props = feat["properties"]
        records.append(_count_record(props["id"], props))
        if feat.get("geometry") is not None:
            located.setdefault(str(props["thing_id"]), (props.get("thing_name"), feat["geometry"]))
    records = _screened(records, report)
    stations = None
    if located:
        ids = list(located)
        points = np.array([shapely.geometry.shape(located[k][1]) for k in ids], dtype=object)
        stations = Stations(
            ids,
            [located[k][0] for k in ids],
            [None] * len(ids),
            points,
            [{} for _ in ids],
            Report(),
        )
    return Counts(records, report, stations)


def context_http_get(context: ResolveContext) -> Any:
    """The SensorThings HTTP client of a context (tests inject recorded replies)."""
    from cut_processes.io.sensorthings import urllib_get

    return getattr(context, "http_get", None) or urllib_get


# -- segments and routes ---------------------------------------------------------------------


@dataclass
class Segments:
    """Crowdsourced segment volumes, one row per segment and period."""

    segment_ids: list[str]
    geometries: np.ndarray
    rides: np.ndarray
    days: np.ndarray  # days in the period (rides / days = rides per day)
    periods: list[str]  # the period's first day ('' when none is given)
    names: list[str | None]
    road_classes: list[str | None]
    feature_ids: list[Any]
    report: Report

    def __len__(self) -> int:
        return len(self.segment_ids)


LINES = {"LineString", "MultiLineString"}


def read_segments(value: Any, context: ResolveContext) -> Segments:
    """The ``segments`` input (see the module docstring)."""
    from cut_processes.io.dbrad import segment_id as derived_id

    report = Report()
    features = _features("segments", value, context, LINES, report)
    raw_coords = None
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        raw_coords = [(f.get("geometry") or {}).get("coordinates") for f in value["features"]]
    merged = 0
    for i, geom in enumerate(features.geometries):
        if geom.geom_type == "MultiLineString":
            line = shapely.line_merge(geom)
            if line.geom_type != "LineString":
                raise InputProblem(
                    "segments",
                    f"feature {features.ids[i]!r} is a MultiLineString of "
                    f"{shapely.get_num_geometries(line)} disconnected parts; give one feature "
                    "per part",
                )
            features.geometries[i] = line
            merged += 1
    if merged:
        report.repaired.append(f"{merged} MultiLineString(s) of joining parts merged into lines")
    lengths = shapely.length(features.geometries)
    seg_ids, rides, days, periods, names, classes = [], [], [], [], [], []
    seen: dict[tuple[str, str], Any] = {}
    ends: dict[str, tuple[str, Any]] = {}
    dated = undated = None
    for i, (fid, props) in enumerate(zip(features.ids, features.properties, strict=True)):
        if not lengths[i] > 0:
            raise InputProblem("segments", f"feature {fid!r} is a line of zero length")
        raw = props.get("rides", props.get("anzahl"))
        try:
            value_rides = parse_number(raw)
        except ValueError:
            raise InputProblem(
                "segments", f"feature {fid!r}: rides {raw!r} is not a number"
            ) from None
        if value_rides is None or not 0 <= value_rides <= MAX_RIDES:
            raise InputProblem(
                "segments", f"feature {fid!r}: rides {raw!r} is not a count (0..{MAX_RIDES:g})"
            )
        try:
            start = parse_date(props.get("week_start", props.get("von")))
            end = parse_date(props.get("week_end", props.get("bis")))
        except ValueError as err:
            raise InputProblem("segments", f"feature {fid!r}: {err}") from None
        if (start is None) != (end is None):
            raise InputProblem(
                "segments",
                f"feature {fid!r}: a period needs its first and last day (week_start and "
                "week_end, or von and bis)",
            )
        if start and end < start:
            raise InputProblem(
                "segments", f"feature {fid!r}: period ends ({end}) before it starts ({start})"
            )
        if start:
            dated = dated if dated is not None else fid
            first_end = ends.setdefault(start, (end, fid))
            if first_end[0] != end:
                raise InputProblem(
                    "segments",
                    f"feature {fid!r}: the period starting {start} ends {end}, but "
                    f"{first_end[0]} for feature {first_end[1]!r}",
                )
        else:
            undated = undated if undated is not None else fid
        if dated is not None and undated is not None:
            raise InputProblem(
                "segments",
                f"feature {undated!r} has no period but feature {dated!r} has one: give every "
                "feature its period or none",
            )
        span = 1
        if start and end:
            span = int((np.datetime64(end) - np.datetime64(start)).astype(int)) + 1
        sid = props.get("segment_id")
        if sid is None:
            if (
                raw_coords is not None
                and raw_coords[i] is not None
                and (features.geometries[i].geom_type == "LineString")
                and isinstance(value, dict)
                and (value["features"][i].get("geometry") or {}).get("type") == "LineString"
            ):
                sid = derived_id(raw_coords[i])
            else:
                sid = derived_id(shapely.get_coordinates(features.geometries[i]).round(2))
        sid = str(sid)
        key = (sid, start or "")
        if key in seen:
            report.rejected.append(
                f"feature {fid!r}: segment {sid} appears again for the period starting "
                f"{start or '(none)'} (first: feature {seen[key]!r}); the first is kept"
            )
            continue
        seen[key] = fid
        seg_ids.append(sid)
        rides.append(float(value_rides))
        days.append(span)
        periods.append(start or "")
        names.append(_label(fid, "name", props.get("name") or props.get("strassenname")))
        classes.append(_label(fid, "road_class", props.get("road_class")))
        keep = len(seg_ids) - 1
        if keep != i:  # rows were dropped before: keep the geometry aligned
            features.geometries[keep] = features.geometries[i]
            features.ids[keep] = fid
    spans = sorted((start, end) for start, (end, _) in ends.items())
    for (a_start, a_end), (b_start, _) in itertools.pairwise(spans):
        if b_start <= a_end:
            raise InputProblem(
                "segments",
                f"the periods {a_start}..{a_end} and {b_start}.. overlap: give weeks (or other "
                "periods) that do not overlap",
            )
    n = len(seg_ids)
    return Segments(
        seg_ids,
        features.geometries[:n],
        np.array(rides),
        np.array(days, float),
        periods,
        names,
        classes,
        list(features.ids[:n]),
        report,
    )


#: More rides than this on one segment in one period are not a count.
MAX_RIDES = 1e9


def _label(fid: Any, key: str, value: Any) -> str | None:
    """A text attribute: strings kept, numbers as text, anything else refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InputProblem("segments", f"feature {fid!r}: {key} {value!r} must be a text")


def read_routes(value: Any, context: ResolveContext) -> FeatureSet:
    """The ``official_routes`` input: (Multi)LineStrings in the analysis CRS."""
    return _features("official_routes", value, context, LINES, Report())
