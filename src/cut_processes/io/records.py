"""What every importer returns, and the small parsers they share.

An importer reads one or more files of one format and returns an :class:`ImportResult`: the
features (GeoJSON-like dicts in the result's ``srid``), the field types of their properties,
the geometry type, and the records it had to reject or repair, each with a reason. A record
that cannot be used never stops an import; a file that cannot be read at all raises
:class:`UnreadableFileError`, naming the file.

Field types are the store's: ``string``, ``integer``, ``number``, ``boolean``, ``date``
(ISO ``YYYY-MM-DD`` text), ``datetime`` (ISO 8601 UTC text ending in ``Z``) and ``json``
(lists and objects).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from pyproj import CRS, Transformer
from shapely.errors import GEOSException

#: The metric CRS of the suite (ETRS89 / UTM zone 32N).
DEFAULT_SRID = 25832
#: ``geometry_type`` of tables without geometry (counts): the store's generic geometry column,
#: left null in every record.
NO_GEOMETRY = "Geometry"

#: How many rejected records the CLI prints; all are kept in the result.
SHOWN_REJECTS = 10


class UnreadableFileError(ValueError):
    """A whole file cannot be read (not the format, broken syntax, missing columns)."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class ImportResult:
    """Features read from a source, ready for ``FeatureStore.replace_collection``.

    ``rejected`` and ``repaired`` hold ``(record_ref, reason)`` pairs: ``record_ref`` names the
    file and the record (line, feature index or id) so a person can find it.
    """

    features: list[dict[str, Any]]
    fields: dict[str, str]
    geometry_type: str
    srid: int = DEFAULT_SRID
    rejected: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[tuple[str, str]] = field(default_factory=list)
    id_field: str = "id"

    def reject(self, record_ref: str, reason: str) -> None:
        self.rejected.append((record_ref, reason))

    def repair(self, record_ref: str, note: str) -> None:
        self.repaired.append((record_ref, note))

    def extend(self, other: ImportResult) -> None:
        """Append another result of the same schema (e.g. the next file)."""
        if other.fields != self.fields or other.geometry_type != self.geometry_type:
            raise ValueError("cannot merge import results of different schemas")
        self.features.extend(other.features)
        self.rejected.extend(other.rejected)
        self.repaired.extend(other.repaired)

    def summary(self) -> str:
        return (
            f"{len(self.features)} features, {len(self.rejected)} rejected, "
            f"{len(self.repaired)} repaired"
        )


def feature(
    properties: dict[str, Any], geometry: dict[str, Any] | None, id_field: str = "id"
) -> dict[str, Any]:
    """A GeoJSON-like feature dict; its id is ``properties[id_field]``."""
    return {
        "type": "Feature",
        "id": properties.get(id_field),
        "geometry": geometry,
        "properties": properties,
    }


def dedupe_ids(result: ImportResult, where: str) -> None:
    """Reject every feature whose id repeats an earlier one (the first one is kept)."""
    seen: set[Any] = set()
    kept = []
    for feat in result.features:
        fid = feat["properties"].get(result.id_field)
        if fid in seen:
            result.reject(f"{where} id {fid}", "duplicate id; the first record with it is kept")
            continue
        seen.add(fid)
        kept.append(feat)
    result.features = kept


# --- values -------------------------------------------------------------------------------


def clean_text(value: Any) -> str | None:
    """Stripped text, or None for empty/missing values."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_number(value: Any) -> float | None:
    """A finite float from a number or text (``"3,5"`` with a decimal comma too); None if empty.

    :raises ValueError: naming the value when it is not a number.
    """
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text or text in {"-", "NA", "n/a", "null", "None"}:
            return None
        if re.fullmatch(r"-?\d+,\d+", text):
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_integer(value: Any) -> int | None:
    """An int from a number or text without fraction; None if empty.

    :raises ValueError: naming the value when it is not a whole number.
    """
    number = parse_number(value)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


_DATE_FORMATS = ("%Y-%m-%d", "%Y.%m.%d", "%d.%m.%Y", "%Y/%m/%d")


def parse_date(value: Any) -> str | None:
    """ISO ``YYYY-MM-DD`` from ``2017.01.31``, ``31.01.2017``, ``2017-01-31`` (or a datetime).

    :raises ValueError: naming the value when it is no date.
    """
    text = clean_text(value)
    if text is None:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise ValueError(f"not a date: {value!r}") from None


def parse_datetime(value: Any, *, assume_utc: bool = True) -> str | None:
    """ISO 8601 UTC text (``2021-08-04T10:15:00Z``) from ISO text with or without offset,
    ``YYYY-MM-DD HH:MM[:SS]``, ``DD.MM.YYYY HH:MM[:SS]`` or a bare date (midnight).

    Values without an offset are taken as UTC (``assume_utc``) or refused.

    :raises ValueError: naming the value when it is no date and time.
    """
    text = clean_text(value)
    if text is None:
        return None
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y.%m.%d"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"not a date and time: {value!r}")
    if parsed.tzinfo is None:
        if not assume_utc:
            raise ValueError(f"date and time without a UTC offset: {value!r}")
        parsed = parsed.replace(tzinfo=UTC)
    return format_utc(parsed)


def format_utc(moment: datetime) -> str:
    """RFC 3339 UTC text with second precision (milliseconds only when present)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def stable_id(*parts: Any, length: int = 16) -> str:
    """A short hex digest of the parts: the same input gives the same id in every run."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return digest.hexdigest()[:length]


# --- coordinates --------------------------------------------------------------------------


@lru_cache(maxsize=32)
def transformer(source: str, target_srid: int = DEFAULT_SRID) -> Transformer:
    """A cached always-xy transformer from ``source`` (``EPSG:4326``, ``OGC:CRS84``...)."""
    return Transformer.from_crs(CRS.from_user_input(source), f"EPSG:{target_srid}", always_xy=True)


def epsg_from_name(name: str | None) -> int | None:
    """The EPSG code in a CRS name: ``EPSG:25832``, ``urn:ogc:def:crs:EPSG::25832``,
    ``http://www.opengis.net/def/crs/EPSG/0/25832``, ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``
    (the AdV names German LoD2 tiles carry; the height part after ``*`` is ignored), CRS84.
    None when the name is empty or unknown.
    """
    if not name:
        return None
    text = name.strip()
    adv = re.search(r"urn:adv:crs:([A-Za-z0-9_]+)", text)
    if adv:
        horizontal = adv.group(1).upper()
        zone = re.fullmatch(r"ETRS89_UTM(\d{2})", horizontal)
        if zone:
            return 25800 + int(zone.group(1))
        return {"ETRS89_LAT-LON": 4258, "ETRS89_GK3": 31467, "DE_DHDN_3GK3": 31467}.get(horizontal)
    if re.search(r"CRS84$", text, re.IGNORECASE):
        return 4326
    match = re.search(r"EPSG(?:/0/|::?|:[\d.]*:)(\d+)", text, re.IGNORECASE)
    if match:
        return int(match.group(1))
    if re.fullmatch(r"\d{4,6}", text):
        return int(text)
    return None


def _to_target(geom: shapely.Geometry, to_target: Transformer | None) -> shapely.Geometry:
    geom = shapely.force_2d(geom)
    if to_target is None:
        return geom
    return shapely.transform(
        geom, lambda xy: np.column_stack(to_target.transform(xy[:, 0], xy[:, 1]))
    )


def read_geometry(
    geometry: Any,
    to_target: Transformer | None,
    *,
    expected: Iterable[str] | None = None,
    point_tolerance_m: float = 1.0,
) -> tuple[shapely.Geometry | None, str | None]:
    """A GeoJSON geometry object -> (2D shapely geometry in the target CRS, repair note).

    Repairs what is unambiguous and says so in the note: a ``Point`` whose ``coordinates``
    hold a list of positions all within ``point_tolerance_m`` metres of their mean becomes
    that mean; an invalid polygon is made valid (``shapely.make_valid``).

    :param to_target: transformer from the source CRS to the target CRS (None: no change).
    :param expected: accepted geometry types (e.g. ``{"LineString", "MultiLineString"}``).
    :raises ValueError: with the reason when the geometry is malformed or ambiguous.
    """
    if geometry is None:
        return None, None
    if not isinstance(geometry, dict) or "type" not in geometry:
        raise ValueError("geometry is not a GeoJSON geometry object")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    note = None
    if (
        kind == "Point"
        and isinstance(coordinates, list)
        and coordinates
        and all(isinstance(c, list | tuple) for c in coordinates)
    ):
        try:
            positions = np.asarray([c[:2] for c in coordinates], dtype=float)
        except (TypeError, ValueError):
            raise ValueError("Point geometry with unreadable coordinates") from None
        if positions.ndim != 2 or positions.shape[1] != 2:
            raise ValueError("Point geometry with unreadable coordinates")
        points = _to_target(shapely.multipoints(positions), to_target)
        xy = shapely.get_coordinates(points)
        centre = xy.mean(axis=0)
        spread = float(np.hypot(*(xy - centre).T).max() * 2)
        if spread > point_tolerance_m:
            raise ValueError(
                f"Point geometry holds {len(xy)} coordinate pairs {spread:.1f} m apart "
                "instead of one position; which one is the location is ambiguous"
            )
        note = (
            f"Point geometry held {len(xy)} coordinate pairs within {spread:.2f} m; "
            "replaced by their mean"
        )
        geom = shapely.Point(centre)
    else:
        try:
            geom = _to_target(shapely.geometry.shape(geometry), to_target)
        except (ValueError, TypeError, AttributeError, IndexError, GEOSException) as err:
            raise ValueError(f"malformed {kind} geometry ({err})") from None
    if geom.is_empty:
        raise ValueError(f"empty {kind} geometry")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise ValueError(f"{kind} geometry with coordinates outside the CRS")
    if not geom.is_valid:
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"invalid {kind} geometry ({shapely.is_valid_reason(geom)})")
        reason = shapely.is_valid_reason(geom)
        geom = shapely.make_valid(geom)
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            polys = [
                g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")
            ]
            if not polys:
                raise ValueError(f"invalid {kind} geometry ({reason}) that cannot be repaired")
            geom = shapely.union_all(polys)
        note = f"invalid {kind} repaired ({reason})"
    if expected is not None and geom.geom_type not in set(expected):
        raise ValueError(
            f"{geom.geom_type} geometry where {' or '.join(sorted(expected))} is expected"
        )
    return geom, note


def read_geojson_file(path: Path) -> tuple[dict, int]:
    """A GeoJSON FeatureCollection file and the EPSG code of its coordinates.

    The legacy ``crs`` member names the CRS where present (as Hamburg's exports do), else
    CRS84/WGS84 (4326). :raises UnreadableFileError: naming the file and the problem.
    """
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableFileError(path, f"not JSON: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise UnreadableFileError(path, "not a GeoJSON FeatureCollection (no 'features')")
    crs_name = ((document.get("crs") or {}).get("properties") or {}).get("name")
    return document, epsg_from_name(crs_name) or 4326
