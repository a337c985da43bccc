"""Bicycle and traffic counting stations and their counts.

* **Munich stations** (``munich_counting_stations.csv``: ``zaehlstelle, zaehlstelle_lang,
  latitude, longitude, richtung_1, richtung_2, besonderheiten``): points, WGS84 ->
  ``target_srid``; ``id`` is the short station name (``Arnulf``).
* **Munich daily counts** (``munich_counters_daily_2017_2023.csv``: ``datum`` as
  ``YYYY.MM.DD``, ``uhrzeit_start``, ``uhrzeit_ende``, ``zaehlstelle``, ``richtung_1``,
  ``richtung_2``, ``gesamt`` and the day's weather ``min-temp``, ``max-temp`` (°C),
  ``niederschlag`` (mm), ``bewoelkung`` (%), ``sonnenstunden`` (h)): a table without
  geometry, one record per station, day and direction (``direction`` 1 or 2, with the
  direction's name when the stations file is given). Rows without counts are rejected, and
  so are all rows of a station and day that appears twice with different counts (which one
  is right is unknown); a ``gesamt`` that is not the sum of both directions is rejected too.
* **Station GeoJSON** (such as Hamburg's traffic counting stations: points with ``name`` and
  a count ``anzahl``): points -> ``target_srid``; ``id`` is the station number at the end of
  the name, else the name. Malformed points are repaired when unambiguous, else rejected
  (see :func:`cut_processes.io.records.read_geometry`).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shapely

from cut_processes.io.records import (
    DEFAULT_SRID,
    NO_GEOMETRY,
    ImportResult,
    UnreadableFileError,
    clean_text,
    dedupe_ids,
    feature,
    parse_date,
    parse_integer,
    parse_number,
    read_geojson_file,
    read_geometry,
    transformer,
)

MUNICH_SOURCE = "Landeshauptstadt München, Raddauerzählstellen, dl-de/by-2-0"

STATION_FIELDS = {
    "id": "string",
    "name": "string",
    "direction_1": "string",
    "direction_2": "string",
    "notes": "string",
    "source": "string",
}
COUNT_FIELDS = {
    "id": "string",
    "station_id": "string",
    "date": "date",
    "direction": "integer",
    "direction_name": "string",
    "count": "integer",
    "min_temperature_c": "number",
    "max_temperature_c": "number",
    "precipitation_mm": "number",
    "cloud_cover_percent": "number",
    "sunshine_hours": "number",
    "source": "string",
}
GEOJSON_STATION_FIELDS = {"id": "string", "name": "string", "anzahl": "integer", "source": "string"}

_STATION_COLUMNS = ("zaehlstelle", "zaehlstelle_lang", "latitude", "longitude")
_COUNT_COLUMNS = ("datum", "zaehlstelle", "richtung_1", "richtung_2", "gesamt")
_WEATHER = {
    "min_temperature_c": "min-temp",
    "max_temperature_c": "max-temp",
    "precipitation_mm": "niederschlag",
    "cloud_cover_percent": "bewoelkung",
    "sunshine_hours": "sonnenstunden",
}
#: The day's weather of a count record (the names every cycling analysis uses).
WEATHER_FIELDS = tuple(_WEATHER)


def _csv_rows(path: Path, required: Sequence[str], what: str):
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    fh = path.open(encoding="utf-8-sig", newline="")
    reader = csv.DictReader(fh)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        fh.close()
        raise UnreadableFileError(path, f"not {what}: missing columns {', '.join(missing)}")
    return fh, reader


def read_munich_stations(
    paths: Sequence[str | Path], *, target_srid: int = DEFAULT_SRID
) -> ImportResult:
    """Munich's counting stations as points in ``target_srid``."""
    result = ImportResult([], dict(STATION_FIELDS), "Point", target_srid)
    to_target = transformer("EPSG:4326", target_srid)
    for path in map(Path, paths):
        fh, reader = _csv_rows(path, _STATION_COLUMNS, "a Munich counting stations file")
        with fh:
            for row in reader:
                ref = f"{path.name} line {reader.line_num}"
                sid = clean_text(row.get("zaehlstelle"))
                if sid is None:
                    result.reject(ref, "no station name (zaehlstelle)")
                    continue
                try:
                    lat, lon = parse_number(row.get("latitude")), parse_number(row.get("longitude"))
                    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                        raise ValueError(f"no valid latitude/longitude ({lat}, {lon})")
                except ValueError as err:
                    result.reject(ref, f"station {sid}: {err}")
                    continue
                x, y = to_target.transform(lon, lat)
                properties = {
                    "id": sid,
                    "name": clean_text(row.get("zaehlstelle_lang")),
                    "direction_1": clean_text(row.get("richtung_1")),
                    "direction_2": clean_text(row.get("richtung_2")),
                    "notes": clean_text(row.get("besonderheiten")),
                    "source": MUNICH_SOURCE,
                }
                result.features.append(feature(properties, shapely.Point(x, y).__geo_interface__))
    dedupe_ids(result, "stations")
    return result


def _direction_names(stations: Path | None) -> dict[str, tuple[str | None, str | None]]:
    if stations is None:
        return {}
    names = {}
    for feat in read_munich_stations([stations]).features:
        p = feat["properties"]
        names[p["id"]] = (p["direction_1"], p["direction_2"])
    return names


def read_munich_counts(
    paths: Sequence[str | Path], *, stations: str | Path | None = None
) -> ImportResult:
    """Munich's daily counts per station, day and direction (no geometry).

    :param stations: the stations file, to name the directions (``Ost``, ``West``...).
    """
    result = ImportResult([], dict(COUNT_FIELDS), NO_GEOMETRY, DEFAULT_SRID)
    names = _direction_names(Path(stations) if stations else None)
    for path in map(Path, paths):
        fh, reader = _csv_rows(path, _COUNT_COLUMNS, "a Munich daily counts file")
        by_day: dict[tuple[str, str], list[tuple[str, list[dict[str, Any]]]]] = defaultdict(list)
        with fh:
            for row in reader:
                ref = f"{path.name} line {reader.line_num}"
                try:
                    key, records = _count_records(row, names)
                except ValueError as err:
                    result.reject(ref, str(err))
                    continue
                by_day[key].append((ref, records))
        for (sid, day), rows in by_day.items():
            counts = {tuple(r["count"] for r in records) for _, records in rows}
            if len(counts) > 1:
                refs = ", ".join(ref for ref, _ in rows)
                for ref, _ in rows:
                    result.reject(
                        ref,
                        f"station {sid} on {day} appears {len(rows)} times with different "
                        f"counts ({refs}); which is right is unknown",
                    )
                continue
            for record in rows[0][1]:
                result.features.append(feature(record, None))
    dedupe_ids(result, "counts")
    return result


def _count_records(
    row: dict[str, str], names: dict[str, tuple[str | None, str | None]]
) -> tuple[tuple[str, str], list[dict[str, Any]]]:
    sid = clean_text(row.get("zaehlstelle"))
    if sid is None:
        raise ValueError("no station name (zaehlstelle)")
    day = parse_date(row.get("datum"))
    if day is None:
        raise ValueError(f"station {sid}: no date")
    counts = [parse_integer(row.get(c)) for c in ("richtung_1", "richtung_2", "gesamt")]
    if counts[0] is None and counts[1] is None:
        raise ValueError(f"station {sid} on {day}: no counts")
    if None not in counts and counts[0] + counts[1] != counts[2]:
        raise ValueError(
            f"station {sid} on {day}: gesamt {counts[2]} is not "
            f"richtung_1 {counts[0]} + richtung_2 {counts[1]}"
        )
    if any(c is not None and c < 0 for c in counts):
        raise ValueError(f"station {sid} on {day}: negative count")
    weather = {}
    for name, column in _WEATHER.items():
        try:
            weather[name] = parse_number(row.get(column))
        except ValueError as err:
            raise ValueError(f"station {sid} on {day}: {column}: {err}") from None
    records = []
    for direction in (1, 2):
        if counts[direction - 1] is None:
            continue
        direction_name = names.get(sid, (None, None))[direction - 1]
        records.append(
            {
                "id": f"{sid}:{day}:{direction}",
                "station_id": sid,
                "date": day,
                "direction": direction,
                "direction_name": direction_name,
                "count": counts[direction - 1],
                **weather,
                "source": MUNICH_SOURCE,
            }
        )
    return (sid, day), records


def read_station_geojson(
    paths: Sequence[str | Path],
    *,
    target_srid: int = DEFAULT_SRID,
    source: str | None = None,
    point_tolerance_m: float = 1.0,
) -> ImportResult:
    """Counting stations of a GeoJSON FeatureCollection of points (``name``, ``anzahl``).

    :param point_tolerance_m: a Point holding several positions is repaired to their mean
        when they lie within this distance (metres), else rejected.
    """
    result = ImportResult([], dict(GEOJSON_STATION_FIELDS), "Point", target_srid)
    for path in map(Path, paths):
        document, srid = read_geojson_file(path)
        to_target = None if srid == target_srid else transformer(f"EPSG:{srid}", target_srid)
        label = source or f"{path.name}; see the data provider's licence"
        for index, item in enumerate(document["features"]):
            props = (item or {}).get("properties") or {}
            name = clean_text(props.get("name"))
            ref = f"{path.name} feature {index}" + (f" ({name})" if name else "")
            if name is None:
                result.reject(ref, "no station name")
                continue
            number = re.search(r"(\d+)\s*$", name)
            try:
                geom, note = read_geometry(
                    item.get("geometry"),
                    to_target,
                    expected={"Point"},
                    point_tolerance_m=point_tolerance_m,
                )
                if geom is None:
                    raise ValueError("no geometry")
                anzahl = parse_integer(props.get("anzahl"))
            except ValueError as err:
                result.reject(ref, str(err))
                continue
            if note:
                result.repair(ref, note)
            properties = {
                "id": number.group(1) if number else name,
                "name": name,
                "anzahl": anzahl,
                "source": label,
            }
            result.features.append(feature(properties, geom.__geo_interface__))
    dedupe_ids(result, "stations")
    return result
