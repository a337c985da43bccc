"""What both stores know about a features table, and the typing of values for it.

A column has one of the store's field kinds: ``string``, ``integer``, ``number``, ``boolean``,
``date``, ``datetime`` or ``json``. The GeoPackage and PostGIS backends describe their tables
in these terms, so query building, validation and output are written once.

Two casts: :func:`cast_query_value` turns a value from a query (URL text, a CQL2 literal) into
the Python value compared with a column, leniently ('3' for an integer column is 3);
:func:`record_value` checks a value that is to be written, strictly (what a transaction or an
importer writes must already have the column's type). Both raise :class:`ValueTypeError`
naming the property and the value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

KINDS = ("string", "integer", "number", "boolean", "date", "datetime", "json")

# Geometry types a GeoPackage / PostGIS column can declare (upper case, as GeoPackage writes).
GEOMETRY_TYPES = (
    "GEOMETRY",
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
)


class ValueTypeError(ValueError):
    """A value that does not fit the type of its column; the message names both."""


@dataclass(frozen=True)
class Column:
    """An attribute column: its name, field kind, and whether it may be NULL."""

    name: str
    kind: str
    nullable: bool = True

    def schema(self) -> dict:
        """JSON Schema of the column as pygeoapi publishes fields and queryables."""
        if self.kind == "date":
            return {"type": "string", "format": "date"}
        if self.kind == "datetime":
            return {"type": "string", "format": "date-time"}
        if self.kind == "json":
            return {"type": "object"}
        return {"type": self.kind}


@dataclass(frozen=True)
class TableInfo:
    """A features table: name, geometry column, CRS, integer key, attribute columns, index."""

    name: str
    geometry_column: str
    geometry_type: str  # one of GEOMETRY_TYPES
    srid: int | None  # EPSG code of the storage CRS, None when unknown
    primary_key: str  # integer key that orders ties ("fid"; SQLite "rowid" if none)
    columns: tuple[Column, ...]
    spatial_index: str | None  # R-tree table (GeoPackage) or GiST index (PostGIS)
    location: str  # file path or database URL without password, for messages
    has_z: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def geometry_type_name(name: str) -> str:
    """Canonical upper-case geometry type of a user-given name ('Polygon' -> 'POLYGON')."""
    canonical = str(name).replace(" ", "").upper()
    for suffix in ("ZM", "Z", "M"):
        if canonical.endswith(suffix) and canonical[: -len(suffix)] in GEOMETRY_TYPES:
            canonical = canonical[: -len(suffix)]
            break
    if canonical not in GEOMETRY_TYPES:
        raise ValueError(
            f"geometry type {name!r} is not one of {', '.join(t.title() for t in GEOMETRY_TYPES)}"
        )
    return canonical


# --- times ------------------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def datetime_text(moment: datetime) -> str:
    """The text form of stored date-times: UTC, milliseconds, 'Z' (as GeoPackage specifies)."""
    moment = utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime_text(text: str) -> datetime:
    """RFC 3339 text (also a plain date, meaning midnight UTC) as an aware UTC datetime."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return utc(datetime.fromisoformat(text))


# --- casting ----------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, date) else f"'{value.isoformat()}'"


def _mismatch(column: Column, value: Any) -> ValueTypeError:
    kind = {"datetime": "date-time"}.get(column.kind, column.kind)
    return ValueTypeError(f"property {column.name!r} is of type {kind}; {_describe(value)} is not")


def _integral(number: float) -> int:
    if not math.isfinite(number) or not float(number).is_integer():
        raise ValueError(number)
    return int(number)


def cast_query_value(column: Column, value: Any) -> Any:
    """A query value as the Python value compared with ``column`` (lenient: text is parsed).

    Returns int, float, bool, str, ``date`` or aware UTC ``datetime``. JSON columns cannot be
    compared.
    """
    kind = column.kind
    try:
        if kind == "integer":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, str):
                text = value.strip()
                return int(text) if text.lstrip("+-").isdigit() else _integral(float(text))
            return _integral(value) if isinstance(value, float) else int(value)
        if kind == "number":
            if isinstance(value, bool | date):
                raise ValueError(value)
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            raise ValueError(value)
        if kind == "date":
            if isinstance(value, datetime):
                raise ValueError(value)
            if isinstance(value, date):
                return value
            if isinstance(value, str) and len(value.strip()) == 10:
                return date.fromisoformat(value.strip())
            raise ValueError(value)
        if kind == "datetime":
            if isinstance(value, datetime):
                return utc(value)
            if isinstance(value, date):
                return datetime(value.year, value.month, value.day, tzinfo=UTC)
            if isinstance(value, str):
                return parse_datetime_text(value)
            raise ValueError(value)
        if kind == "json":
            raise ValueTypeError(
                f"property {column.name!r} holds JSON values: it can only be tested with IS NULL"
            )
    except (TypeError, ValueError, OverflowError) as err:
        if isinstance(err, ValueTypeError):
            raise
        raise _mismatch(column, value) from err
    if not isinstance(value, str):
        raise _mismatch(column, value)
    return value


def record_value(column: Column, value: Any) -> Any:
    """A value to be written into ``column``, checked strictly; ``None`` is NULL.

    Accepts: string -> str; integer -> int (or an integral float); number -> finite int or
    float; boolean -> bool; date -> ``date`` or 'YYYY-MM-DD'; datetime -> ``datetime`` or RFC
    3339 text (returned as aware UTC datetime); json -> anything JSON can encode.
    """
    if value is None:
        return None
    kind = column.kind
    try:
        if kind == "string" and isinstance(value, str):
            return value
        if kind == "integer" and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, float):
                return _integral(value)
        if (
            kind == "number"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ):
            return float(value)
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind == "date":
            if isinstance(value, date) and not isinstance(value, datetime):
                return value
            if isinstance(value, str) and len(value) == 10:
                return date.fromisoformat(value)
        if kind == "datetime":
            if isinstance(value, datetime):
                return utc(value)
            if isinstance(value, str) and len(value) > 10:
                return utc(datetime.fromisoformat(value))
        if kind == "json":
            json.dumps(value, allow_nan=False)
            return value
    except (TypeError, ValueError, OverflowError) as err:
        raise _mismatch(column, value) from err
    raise _mismatch(column, value)
