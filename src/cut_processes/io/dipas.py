"""DIPAS contributions (Hamburg's digital participation system) -> the contributions schema.

Two exports are read:

* the **PDS GeoJSON** of a proceeding (``/drupal/dipas-pds/projects/{id}/contributions``): a
  FeatureCollection whose features carry ``id``, ``title``, ``contributionContent``,
  ``category``, ``contributionType`` (the rubric), ``dateCreated``, ``votingPro``,
  ``votingContra``, ``commentsNumber``, ``belongToProject``, ``link``, ``referenceSystem``
  (EPSG code of the geometry, default 4326) and ``dipasLocated`` (false: the geometry is only
  the project area, so the contribution gets none);
* the **CSV export** of the DIPAS admin (``/dipas/export/contributions``): ``;``-separated,
  UTF-8 with BOM, one row per contribution, headers in English as DIPAS writes them
  (``Node ID;Category;Rubric;Created (UTC);...;Upvotes;Downvotes;Comments;Title;
  Contributiontext;Location;Contribution Type``) or German as a translated export labels them
  (``Beitrags-ID;Kategorie;Rubrik;Erstellt (UTC);...;Zustimmungen;Ablehnungen;Kommentare;
  Titel;Beitragstext;Verortung;Geometrietyp``). It has no coordinates.

Both are normalised to :data:`CONTRIBUTION_FIELDS`. Texts are personal statements: this
module never logs them, and reject reasons never quote them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cut_processes.io.records import (
    DEFAULT_SRID,
    ImportResult,
    UnreadableFileError,
    clean_text,
    dedupe_ids,
    epsg_from_name,
    feature,
    parse_datetime,
    parse_integer,
    read_geometry,
    transformer,
)

#: The contributions schema every participation importer (and the demo) writes.
CONTRIBUTION_FIELDS = {
    "id": "string",
    "title": "string",
    "text": "string",
    "category": "string",
    "contribution_type": "string",
    "date_created": "datetime",
    "votes_up": "integer",
    "votes_down": "integer",
    "comments": "integer",
    "project": "string",
    "url": "string",
    "topics": "json",
    "source": "string",
}
#: Contributions may be points, lines or areas, or have no geometry at all.
CONTRIBUTION_GEOMETRY = "Geometry"


def contribution(**values: Any) -> dict[str, Any]:
    """A contributions record with every field present (missing ones None)."""
    unknown = set(values) - set(CONTRIBUTION_FIELDS)
    if unknown:
        raise KeyError(f"not contribution fields: {sorted(unknown)}")
    return {name: values.get(name) for name in CONTRIBUTION_FIELDS}


def _empty(srid: int) -> ImportResult:
    return ImportResult([], dict(CONTRIBUTION_FIELDS), CONTRIBUTION_GEOMETRY, srid)


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableFileError(path, f"not JSON: {err}") from None


def _project(value: Any) -> str | None:
    """``belongToProject`` is an id string in DIPAS; some exports nest it in an object."""
    if isinstance(value, dict):
        value = value.get("id") or value.get("name") or value.get("title")
    elif isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return clean_text(value)


def read_dipas_geojson(
    paths: Sequence[str | Path],
    *,
    target_srid: int = DEFAULT_SRID,
    source: str | None = None,
) -> ImportResult:
    """Contributions of DIPAS PDS GeoJSON files.

    :param source: text for the ``source`` field (default: ``DIPAS PDS export <file name>``).
    :raises UnreadableFileError: a file is not JSON or not a FeatureCollection.
    """
    result = _empty(target_srid)
    for path in map(Path, paths):
        document = _load_json(path)
        if not isinstance(document, dict) or not isinstance(document.get("features"), list):
            raise UnreadableFileError(path, "not a GeoJSON FeatureCollection (no 'features')")
        default_crs = epsg_from_name(
            ((document.get("crs") or {}).get("properties") or {}).get("name")
        )
        label = source or f"DIPAS PDS export {path.name}"
        for index, item in enumerate(document["features"]):
            ref = f"{path.name} feature {index}"
            try:
                record, geometry, note = _pds_record(item, default_crs, target_srid, label)
            except ValueError as err:
                result.reject(ref, str(err))
                continue
            if note:
                result.repair(f"{ref} (id {record['id']})", note)
            result.features.append(feature(record, geometry))
    dedupe_ids(result, "DIPAS")
    return result


def _pds_record(
    item: Any, default_crs: int | None, target_srid: int, label: str
) -> tuple[dict[str, Any], dict | None, str | None]:
    if not isinstance(item, dict):
        raise ValueError("not a GeoJSON feature")
    props = item.get("properties") or {}
    cid = clean_text(props.get("id", item.get("id")))
    if cid is None:
        raise ValueError("no contribution id")
    title = clean_text(props.get("title"))
    text = clean_text(props.get("contributionContent"))
    if title is None and text is None:
        raise ValueError(f"contribution {cid} has neither title nor text")
    values: dict[str, Any] = {}
    for name, key, parse in (
        ("date_created", "dateCreated", parse_datetime),
        ("votes_up", "votingPro", parse_integer),
        ("votes_down", "votingContra", parse_integer),
        ("comments", "commentsNumber", parse_integer),
    ):
        try:
            values[name] = parse(props.get(key))
        except ValueError as err:
            raise ValueError(f"contribution {cid}: {key}: {err}") from None
    geometry, note = None, None
    located = props.get("dipasLocated", True) not in (False, "false", 0, "0")
    raw = item.get("geometry")
    if located and raw is not None and not _null_island(raw):
        srid = epsg_from_name(str(props.get("referenceSystem") or "")) or default_crs or 4326
        to_target = None if srid == target_srid else transformer(f"EPSG:{srid}", target_srid)
        try:
            geom, note = read_geometry(raw, to_target)
        except ValueError as err:
            raise ValueError(f"contribution {cid}: {err}") from None
        geometry = geom.__geo_interface__ if geom is not None else None
    record = contribution(
        id=cid,
        title=title,
        text=text,
        category=clean_text(props.get("category")),
        contribution_type=clean_text(props.get("contributionType")),
        project=_project(props.get("belongToProject")),
        url=clean_text(props.get("link")),
        topics=None,
        source=label,
        **values,
    )
    return record, geometry, note


def _null_island(geometry: Any) -> bool:
    """DIPAS writes ``Point [0, 0]`` for contributions without a location."""
    return (
        isinstance(geometry, dict)
        and geometry.get("type") == "Point"
        and geometry.get("coordinates") in ([0, 0], [0.0, 0.0])
    )


# --- CSV export ----------------------------------------------------------------------------

#: Header spellings of the DIPAS CSV export (English as DIPAS writes it, German labels),
#: compared case-insensitively after stripping.
CSV_HEADERS = {
    "id": ("node id", "beitrags-id", "beitrag-id", "beitragsid", "id", "nid"),
    "category": ("category", "kategorie"),
    "contribution_type": ("rubric", "rubrik", "beitragsart"),
    "date_created": (
        "created (utc)",
        "erstellt (utc)",
        "erstellt am",
        "erstellt",
        "erstellungsdatum",
        "datum",
    ),
    "votes_up": ("upvotes", "zustimmungen", "zustimmung", "positive bewertungen", "pro"),
    "votes_down": ("downvotes", "ablehnungen", "ablehnung", "negative bewertungen", "contra"),
    "comments": ("comments", "kommentare", "anzahl kommentare"),
    "title": ("title", "titel"),
    "text": ("contributiontext", "contribution text", "beitragstext", "text", "beitrag", "inhalt"),
}


def _csv_columns(header: list[str], path: Path) -> dict[str, int]:
    normalised = [h.strip().lstrip("\ufeff").strip('"').casefold() for h in header]
    columns: dict[str, int] = {}
    for name, spellings in CSV_HEADERS.items():
        for spelling in spellings:
            if spelling in normalised:
                columns[name] = normalised.index(spelling)
                break
    missing = [n for n in ("id", "title", "text") if n not in columns]
    if missing:
        raise UnreadableFileError(
            path,
            f"not a DIPAS contributions export: no column for {', '.join(missing)} "
            f"(headers: {'; '.join(h.strip() for h in header)})",
        )
    return columns


def read_dipas_csv(
    paths: Sequence[str | Path],
    *,
    project: str | None = None,
    source: str | None = None,
) -> ImportResult:
    """Contributions of DIPAS CSV exports (no geometry: the export has no coordinates).

    :param project: the proceeding's name for the ``project`` field (the export lacks it).
    :raises UnreadableFileError: a file cannot be decoded or lacks id, title or text columns.
    """
    result = _empty(DEFAULT_SRID)
    for path in map(Path, paths):
        if not path.is_file():
            raise UnreadableFileError(path, "no such file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            text = path.read_text(encoding="cp1252")  # Excel re-saved exports
        first_line = text.split("\n", 1)[0]
        delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise UnreadableFileError(path, "empty file") from None
        columns = _csv_columns(header, path)
        label = source or f"DIPAS CSV export {path.name}"
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            ref = f"{path.name} line {reader.line_num}"
            try:
                record = _csv_record(row, columns, project, label)
            except ValueError as err:
                result.reject(ref, str(err))
                continue
            result.features.append(feature(record, None))
    dedupe_ids(result, "DIPAS CSV")
    return result


def _csv_record(
    row: list[str], columns: dict[str, int], project: str | None, label: str
) -> dict[str, Any]:
    def cell(name: str) -> str | None:
        index = columns.get(name)
        return clean_text(row[index]) if index is not None and index < len(row) else None

    cid = cell("id")
    if cid is None:
        raise ValueError("no contribution id")
    title, text = cell("title"), cell("text")
    if title is None and text is None:
        raise ValueError(f"contribution {cid} has neither title nor text")
    values: dict[str, Any] = {}
    for name, parse in (
        ("date_created", parse_datetime),
        ("votes_up", parse_integer),
        ("votes_down", parse_integer),
        ("comments", parse_integer),
    ):
        try:
            values[name] = parse(cell(name))
        except ValueError as err:
            raise ValueError(f"contribution {cid}: {name}: {err}") from None
    return contribution(
        id=cid,
        title=title,
        text=text,
        category=cell("category"),
        contribution_type=cell("contribution_type"),
        project=project,
        url=None,
        topics=None,
        source=label,
        **values,
    )
