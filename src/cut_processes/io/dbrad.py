"""DB Rad+ crowdsourced cycling volumes (Hamburg's weekly GeoJSON) -> segment volumes.

Each week file is a FeatureCollection of street segments (LineStrings, CRS84) with
``anzahl`` (rides recorded on the segment in the week), ``geschwindigkeit`` (mean speed,
km/h), ``von`` and ``bis`` (first and last day of the week) and a ``gml_id`` that the
platform renumbers every week, so it does not identify a segment across weeks.

``segment_id`` is therefore derived from the geometry: the first 16 hex digits of the
sha256 of the segment's source coordinates rounded to 7 decimals (about 1 cm), so the same
segment gets the same id in every week it appears in. One record per segment and week:
``id`` = ``<segment_id>:<week_start>``. Segments repeated within a week are rejected after
the first, as are features with missing or non-numeric counts, bad dates or geometries that
are not lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cut_processes.io.records import (
    DEFAULT_SRID,
    ImportResult,
    dedupe_ids,
    feature,
    parse_date,
    parse_integer,
    parse_number,
    read_geojson_file,
    read_geometry,
    stable_id,
    transformer,
)

FIELDS = {
    "id": "string",
    "segment_id": "string",
    "week_start": "date",
    "week_end": "date",
    "rides": "integer",
    "speed_kmh": "number",
    "gml_id": "string",
    "source": "string",
}
GEOMETRY_TYPE = "LineString"
SOURCE = "DB Rad+ via Behörde für Verkehr und Mobilitätswende Hamburg, dl-de/by-2-0"


def segment_id(coordinates: Any) -> str:
    """Stable id of a line from its source coordinates (7 decimals)."""
    flat = []
    for position in coordinates:
        flat.append(",".join(f"{float(v):.7f}" for v in position[:2]))
    return stable_id(";".join(flat))


def read_dbrad(paths: Sequence[str | Path], *, target_srid: int = DEFAULT_SRID) -> ImportResult:
    """Weekly segment volumes of DB Rad+ GeoJSON files (LineStrings in ``target_srid``)."""
    result = ImportResult([], dict(FIELDS), GEOMETRY_TYPE, target_srid)
    for path in map(Path, paths):
        document, srid = read_geojson_file(path)
        to_target = transformer(f"EPSG:{srid}", target_srid)
        for index, item in enumerate(document["features"]):
            ref = f"{path.name} feature {index}"
            try:
                record, geometry = _record(item, to_target)
            except ValueError as err:
                result.reject(ref, str(err))
                continue
            result.features.append(feature(record, geometry))
    dedupe_ids(result, "DB Rad+")
    return result


def _record(item: Any, to_target: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(item, dict):
        raise ValueError("not a GeoJSON feature")
    props = item.get("properties") or {}
    raw = item.get("geometry")
    geom, _ = read_geometry(raw, to_target, expected={"LineString"})
    if geom is None:
        raise ValueError("no geometry")
    if geom.length <= 0:
        raise ValueError("LineString of zero length")
    try:
        rides = parse_integer(props.get("anzahl"))
    except ValueError as err:
        raise ValueError(f"anzahl: {err}") from None
    if rides is None or rides < 0:
        raise ValueError(f"anzahl {props.get('anzahl')!r} is not a count of rides")
    try:
        speed = parse_number(props.get("geschwindigkeit"))
    except ValueError as err:
        raise ValueError(f"geschwindigkeit: {err}") from None
    start, end = parse_date(props.get("von")), parse_date(props.get("bis"))
    if start is None or end is None or end < start:
        raise ValueError(f"week von {props.get('von')!r} .. bis {props.get('bis')!r} is no period")
    sid = segment_id(raw["coordinates"])
    record = {
        "id": f"{sid}:{start}",
        "segment_id": sid,
        "week_start": start,
        "week_end": end,
        "rides": rides,
        "speed_kmh": speed,
        "gml_id": props.get("gml_id"),
        "source": SOURCE,
    }
    return record, geom.__geo_interface__
