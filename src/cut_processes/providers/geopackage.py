"""A read-only pygeoapi feature provider for GeoPackage tables, read with ``sqlite3``.

Configuration (a ``providers`` entry of a collection)::

    type: feature
    name: cut_processes.providers.GeoPackageProvider
    data: var/demo/district.gpkg        # GeoPackage file
    table: buildings                    # features table
    id_field: id                        # optional, default the table's integer primary key
    time_field: observed_at             # optional, a DATE, DATETIME or TEXT column
    properties: [a, b]                  # optional, the properties published
    storage_crs: http://www.opengis.net/def/crs/EPSG/0/25832   # the table's CRS

What ``query`` supports: ``offset``/``limit`` paging, ``resulttype`` results|hits (with
``numberMatched`` from a COUNT under the same WHERE), ``bbox`` in the storage CRS (exact
intersection, see below), ``datetime_`` (instant or interval with open ends ``..``) on
``time_field``, property equality filters with values cast to the column type, ``sortby``
(nulls last in both directions), ``select_properties``, ``skip_geometry`` and output in any CRS
through pygeoapi's ``crs_transform_spec``. ``q`` (free text) and ``filterq`` (CQL2) are refused
with HTTP 400 rather than ignored. Writing (create/update/delete) is not supported.

bbox semantics: the R*Tree index of the table selects the features whose envelope overlaps the
box; those whose envelope lies inside the box match outright, the others only if their geometry
intersects the box exactly (an SQLite function on the few boundary candidates). COUNT and paging
see the same predicate, so ``numberMatched`` and pages agree. Features with a NULL or empty
geometry never match a bbox.

The query is an SQL statement built from parts (WHERE clauses with their parameters, ORDER BY,
LIMIT/OFFSET; see :class:`SelectParts`) so that further predicates, e.g. CQL2, can be added as
more WHERE clauses. Each thread opens its own read-only connection (``file:...?mode=ro``), so
the provider is safe under threaded and forking (gunicorn) servers; pygeoapi instantiates the
provider for every request, so the table description is cached per file version.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
from pygeoapi.crs import DEFAULT_STORAGE_CRS, get_crs
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from cut_processes.providers.geojson_geometry import to_geojson_geometries, transform_geometries
from cut_processes.providers.gpkg_binary import (
    GeoPackageBlobError,
    blob_intersects_box,
    geometries_from_blobs,
)

LOGGER = logging.getLogger(__name__)

# SQLite function name of the exact geometry/box intersection test (gpkg_binary).
_INTERSECTS_BOX_SQL = "cut_gpkg_intersects_box"
# Normalised UTC time text as SQLite's strftime writes it, for DATETIME comparisons.
_SQL_TIME_FORMAT = "%Y-%m-%dT%H:%M:%f"

_INTEGER_TYPES = {"INTEGER", "INT", "TINYINT", "SMALLINT", "MEDIUMINT", "BIGINT"}
_NUMBER_TYPES = {"REAL", "FLOAT", "DOUBLE"}


@dataclass(frozen=True)
class Column:
    """An attribute column: its SQL name, declared GeoPackage type and JSON schema type."""

    name: str
    declared_type: str
    json_type: str
    json_format: str | None = None

    def schema(self) -> dict:
        """The pygeoapi field description (``{'type': ..., 'format': ...}``)."""
        described = {"type": self.json_type}
        if self.json_format:
            described["format"] = self.json_format
        return described


@dataclass(frozen=True)
class FeatureTable:
    """What the provider needs to know about one features table of a GeoPackage."""

    name: str
    geometry_column: str
    geometry_type: str
    srs_id: int
    srs_organization: str | None
    srs_code: int | None
    primary_key: str
    columns: tuple[Column, ...]
    rtree: str | None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class SelectParts:
    """An SQL SELECT assembled from parts; WHERE clauses are ANDed, parameters are positional."""

    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    order_by: list[str] = field(default_factory=list)

    def add_where(self, clause: str, *params: Any) -> None:
        self.where.append(clause)
        self.params.extend(params)

    def where_sql(self) -> str:
        if not self.where:
            return ""
        return " WHERE " + " AND ".join(f"({clause})" for clause in self.where)

    def count_sql(self, table: str) -> str:
        return f"SELECT COUNT(*) FROM {quote(table)}{self.where_sql()}"

    def select_sql(self, table: str, columns: list[str], paged: bool = True) -> str:
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)}"
        sql += self.where_sql()
        if self.order_by:
            sql += " ORDER BY " + ", ".join(self.order_by)
        if paged:
            sql += " LIMIT ? OFFSET ?"
        return sql


def quote(identifier: str) -> str:
    """An SQL identifier in double quotes (names come from the table description only)."""
    return '"' + identifier.replace('"', '""') + '"'


class GeoPackageProvider(BaseProvider):
    """pygeoapi feature provider for one features table of a GeoPackage (read-only)."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        self.table = provider_def.get("table")
        if not self.table:
            raise ProviderConnectionError(f"GeoPackage provider of {self.data}: no 'table' set")
        self.path = Path(self.data).resolve()
        self.feature_table = describe_table(self.path, self.table)
        table = self.feature_table

        if self.id_field is None:
            self.id_field = table.primary_key
        elif self.id_field != table.primary_key and table.column(self.id_field) is None:
            raise ProviderConnectionError(
                f"id_field {self.id_field!r} is not a column of table {table.name!r} in "
                f"{self.path}; columns: {', '.join(c.name for c in table.columns)}"
            )
        if self.time_field is not None:
            column = table.column(self.time_field)
            if column is None or column.json_type != "string":
                raise ProviderConnectionError(
                    f"time_field {self.time_field!r} must be a DATE, DATETIME or TEXT column of "
                    f"table {table.name!r} in {self.path}"
                )
        self._check_storage_crs(provider_def)
        self.get_fields()

    def _check_storage_crs(self, provider_def: dict) -> None:
        """Refuse a storage_crs that contradicts the EPSG code the GeoPackage declares."""
        table = self.feature_table
        if (table.srs_organization or "").upper() != "EPSG" or table.srs_code is None:
            return
        configured = provider_def.get("storage_crs", DEFAULT_STORAGE_CRS)
        storage_epsg, geographic = _epsg_code(configured)
        if storage_epsg == table.srs_code:
            return
        # GeoPackage stores x=longitude, y=latitude, which is CRS84 (pygeoapi's default).
        if storage_epsg is None and table.srs_code == 4326 and geographic:
            return
        raise ProviderConnectionError(
            f"storage_crs {configured} does not match EPSG:{table.srs_code} of table "
            f"{table.name!r} in {self.path}; set storage_crs: "
            f"http://www.opengis.net/def/crs/EPSG/0/{table.srs_code}"
        )

    def get_fields(self) -> dict:
        """Attribute columns as ``{name: {'type': ..., 'format': ...}}`` (no geometry, no BLOBs).

        Types: string (TEXT; DATE with format date, DATETIME with format date-time), integer,
        number, boolean. The integer primary key is included only when it is the id field.
        """
        if not self._fields:
            table = self.feature_table
            fields = {}
            if self.id_field == table.primary_key:
                fields[table.primary_key] = {"type": "integer"}
            for column in table.columns:
                fields[column.name] = column.schema()
            # pygeoapi edits these dicts in place (schema endpoint): never hand out shared ones.
            self._fields = deepcopy(fields)
        return self._fields

    # --- reading -------------------------------------------------------------------------

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list | None = None,
        datetime_: str | None = None,
        properties: list | None = None,
        sortby: list | None = None,
        select_properties: list | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        crs_transform_spec: Any = None,
        **kwargs: Any,
    ) -> dict:
        """Query the table; returns a GeoJSON FeatureCollection dict.

        :param offset: features to skip (>= 0)
        :param limit: features to return at most (>= 0)
        :param resulttype: 'results' or 'hits' (only numberMatched)
        :param bbox: [minx, miny, maxx, maxy] (or 6 numbers with z) in the storage CRS
        :param datetime_: instant or 'begin/end' interval (open end '..') on time_field
        :param properties: [(name, value)] equality filters; values cast to the column type
        :param sortby: [{'property': name, 'order': '+'|'-'}]
        :param select_properties: names of the properties to return
        :param skip_geometry: return null geometries
        :param q: not supported (must be None)
        :param filterq: not supported yet (must be None)
        :param crs_transform_spec: pygeoapi CrsTransformSpec for the output CRS, or None
        """
        if q:
            raise ProviderInvalidQueryError(user_msg="q (free-text search) is not supported")
        if filterq is not None:
            raise ProviderInvalidQueryError(user_msg="filter is not supported by this collection")
        if resulttype not in ("results", "hits"):
            raise ProviderInvalidQueryError(
                user_msg=f"resulttype must be 'results' or 'hits', got {resulttype!r}"
            )
        offset, limit = _non_negative_int("offset", offset), _non_negative_int("limit", limit)

        parts = SelectParts()
        self._add_bbox(parts, bbox or [])
        self._add_datetime(parts, datetime_)
        self._add_property_filters(parts, properties or [])
        self._add_sortby(parts, sortby or [])
        names = self._output_properties(select_properties or [])

        collection: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        connection = _connection(self.path)
        if self.count or resulttype == "hits":
            sql = parts.count_sql(self.feature_table.name)
            collection["numberMatched"] = self._execute(connection, sql, parts.params)[0][0]
        if resulttype == "hits":
            collection["numberReturned"] = 0
            return collection

        columns = self._select_columns(names, skip_geometry)
        sql = parts.select_sql(self.feature_table.name, columns)
        rows = self._execute(connection, sql, [*parts.params, limit, offset])
        collection["features"] = self._features(rows, names, skip_geometry, crs_transform_spec)
        collection["numberReturned"] = len(rows)
        return collection

    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> dict:
        """The feature whose id field equals ``identifier``; ProviderItemNotFoundError if none."""
        table = self.feature_table
        value = self._id_value(identifier)
        if value is not None:
            parts = SelectParts(order_by=[quote(table.primary_key)])
            parts.add_where(f"{quote(self.id_field)} = ?", value)
            names = self._output_properties([])
            columns = self._select_columns(names, skip_geometry=False)
            sql = parts.select_sql(table.name, columns)
            rows = self._execute(_connection(self.path), sql, [*parts.params, 1, 0])
            if rows:
                return self._features(rows, names, False, crs_transform_spec)[0]
        raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found")

    def _execute(self, connection: sqlite3.Connection, sql: str, params: list) -> list:
        LOGGER.debug("SQL %s %s", sql, params)
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise ProviderQueryError(
                f"query on {self.feature_table.name} in {self.path} failed: {err}; SQL: {sql}"
            ) from err

    # --- query parts ---------------------------------------------------------------------

    def _add_bbox(self, parts: SelectParts, bbox: list) -> None:
        if not bbox:
            return
        if len(bbox) not in (4, 6):
            raise ProviderInvalidQueryError(
                user_msg=f"bbox must have 4 or 6 numbers, got {len(bbox)}"
            )
        try:
            numbers = [float(v) for v in bbox]
        except (TypeError, ValueError) as err:
            raise ProviderInvalidQueryError(user_msg=f"bbox must be numbers: {bbox}") from err
        if len(numbers) == 6:  # minx, miny, minz, maxx, maxy, maxz
            numbers = [numbers[i] for i in (0, 1, 3, 4)]
        minx, miny, maxx, maxy = numbers
        table = self.feature_table
        geometry = quote(table.geometry_column)
        exact = f"{_INTERSECTS_BOX_SQL}({{}}, ?, ?, ?, ?)"
        if table.rtree is None:
            parts.add_where(exact.format(geometry), minx, miny, maxx, maxy)
            return
        # Envelope overlap from the index; inside the box: a match; on its edge: exact test.
        # The R*Tree stores float32 bounds rounded outwards, so both index tests are safe.
        pk = quote(table.primary_key)
        own_geometry = f"(SELECT {geometry} FROM {quote(table.name)} WHERE {pk} = r.id)"
        overlaps = (maxx, minx, maxy, miny)
        inside = (minx, maxx, miny, maxy)
        parts.add_where(
            f"{pk} IN (SELECT r.id FROM {quote(table.rtree)} AS r"
            " WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
            " AND ((r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?)"
            f" OR {exact.format(own_geometry)}))",
            *overlaps,
            *inside,
            minx,
            miny,
            maxx,
            maxy,
        )

    def _add_datetime(self, parts: SelectParts, datetime_: str | None) -> None:
        if datetime_ is None or datetime_ == "":
            return
        if self.time_field is None:
            raise ProviderInvalidQueryError(
                user_msg="datetime is not supported: this collection has no time field"
            )
        column = self.feature_table.column(self.time_field)
        is_date = column.json_format == "date"
        # DATE text compares as it is; date-times are normalised to UTC text first.
        sql_value = quote(column.name)
        if not is_date:
            sql_value = f"strftime('{_SQL_TIME_FORMAT}', {sql_value})"
        text = str(datetime_).strip()
        if "/" in text:
            begin_text, end_text = (part.strip() for part in text.split("/", 1))
            begin = _parse_time(begin_text)
            end = _parse_time(end_text)
        else:
            begin = end = _parse_time(text)
            if begin is None:
                return
        if begin is None and end is None:  # '../..': any feature that has a time
            parts.add_where(f"{sql_value} IS NOT NULL")
        if begin is not None:
            parts.add_where(f"{sql_value} >= ?", _time_text(begin[0], is_date))
        if end is not None:
            moment, date_only = end
            if date_only and not is_date:
                # A date as end (or instant) on a date-time column: up to the end of that day.
                parts.add_where(f"{sql_value} < ?", _time_text(moment + timedelta(days=1), False))
            else:
                parts.add_where(f"{sql_value} <= ?", _time_text(moment, is_date))

    def _add_property_filters(self, parts: SelectParts, properties: list) -> None:
        for name, value in properties:
            column = self._known_column(name, "property filter")
            parts.add_where(f"{quote(column.name)} = ?", _cast(column, value))

    def _add_sortby(self, parts: SelectParts, sortby: list) -> None:
        for sort in sortby:
            name = sort.get("property")
            order = sort.get("order", "+")
            if order not in ("+", "-"):
                raise ProviderInvalidQueryError(
                    user_msg=f"sortby order of {name!r} must be '+' or '-', got {order!r}"
                )
            sql_name = self._sortable_name(name)
            direction = "DESC" if order == "-" else "ASC"
            parts.order_by.append(f"{quote(sql_name)} {direction} NULLS LAST")
        # The primary key last, so that pages are stable.
        parts.order_by.append(quote(self.feature_table.primary_key))

    def _sortable_name(self, name: str) -> str:
        return self._known_column(name, "sortby").name

    def _column(self, name: str) -> Column | None:
        """The column of a field name; the integer primary key counts when it is the id."""
        if name == self.id_field == self.feature_table.primary_key:
            return Column(name, "INTEGER", "integer")
        return self.feature_table.column(name)

    def _known_column(self, name: str, usage: str) -> Column:
        column = self._column(name)
        if column is None:
            known = ", ".join(c.name for c in self.feature_table.columns)
            raise ProviderInvalidQueryError(
                user_msg=f"unknown property {name!r} in {usage}; properties: {known}"
            )
        return column

    def _output_properties(self, select_properties: list) -> list[str]:
        """Names of the properties to return, in table order unless selected explicitly."""
        available = list(self.fields)
        for name in select_properties:
            if name not in available:
                raise ProviderInvalidQueryError(
                    user_msg=f"unknown property {name!r} in properties; "
                    f"properties: {', '.join(available)}"
                )
        names = list(dict.fromkeys(select_properties)) if select_properties else available
        if self.properties:
            names = [name for name in names if name in self.properties]
        return names

    def _select_columns(self, names: list[str], skip_geometry: bool) -> list[str]:
        """Columns of the SELECT: id field, geometry (unless skipped), then the properties."""
        columns = [self.id_field]
        if not skip_geometry:
            columns.append(self.feature_table.geometry_column)
        return columns + names

    def _id_value(self, identifier: Any) -> Any:
        """The identifier cast to the id column's type, or None when it cannot match."""
        try:
            return _cast(self._column(self.id_field), identifier)
        except ProviderInvalidQueryError:
            return None

    # --- features --------------------------------------------------------------------------

    def _features(
        self, rows: list, names: list[str], skip_geometry: bool, crs_transform_spec: Any
    ) -> list[dict]:
        first_property = 1 if skip_geometry else 2
        if skip_geometry:
            geometries: list = [None] * len(rows)
        else:
            try:
                shapes = geometries_from_blobs([row[1] for row in rows])
            except (GeoPackageBlobError, shapely.errors.ShapelyError) as err:
                raise ProviderQueryError(
                    f"cannot decode geometries of {self.feature_table.name} in {self.path}: {err}"
                ) from err
            geometries = to_geojson_geometries(transform_geometries(shapes, crs_transform_spec))
        booleans = [name for name in names if self.fields[name]["type"] == "boolean"]
        features = []
        for row, geometry in zip(rows, geometries, strict=True):
            values = dict(zip(names, row[first_property:], strict=True))
            for name in booleans:
                if values[name] is not None:
                    values[name] = bool(values[name])
            features.append(
                {"type": "Feature", "id": row[0], "geometry": geometry, "properties": values}
            )
        return features

    def __repr__(self) -> str:
        return f"<GeoPackageProvider> {self.path} {self.table}"


# --- values ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _epsg_code(crs_uri: str) -> tuple[int | None, bool]:
    """EPSG code (None if there is none) and whether the CRS is geographic; cached because
    pyproj's identification takes milliseconds and providers are built for every request."""
    crs = get_crs(crs_uri)
    return crs.to_epsg(), crs.is_geographic


def _non_negative_int(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as err:
        message = f"{name} must be an integer, got {value!r}"
        raise ProviderInvalidQueryError(user_msg=message) from err
    if number < 0:
        raise ProviderInvalidQueryError(user_msg=f"{name} must be >= 0, got {number}")
    return number


def _cast(column: Column, value: Any) -> Any:
    """A query value (usually URL text) as the Python value to compare with the column."""
    kind = column.json_type
    try:
        if kind == "integer":
            if isinstance(value, str):
                text = value.strip()
                return int(text) if text.lstrip("+-").isdigit() else _integral(float(text))
            return _integral(value) if isinstance(value, float) else int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return int(value)
            text = str(value).strip().lower()
            if text in ("true", "1"):
                return 1
            if text in ("false", "0"):
                return 0
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise ProviderInvalidQueryError(
            user_msg=f"property {column.name!r} is of type {kind}; {value!r} is not"
        ) from err
    return str(value)


def _integral(number: float) -> int:
    if not float(number).is_integer():
        raise ValueError(number)
    return int(number)


def _parse_time(text: str) -> tuple[datetime, bool] | None:
    """(UTC datetime, whether only a date was given) of an RFC 3339 text; None for '..'."""
    if text in ("..", ""):
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise ProviderInvalidQueryError(
            user_msg=f"datetime {text!r} is not an RFC 3339 date or date-time"
        ) from err
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment, False


def _time_text(moment: datetime, as_date: bool) -> str:
    if as_date:
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


# --- the GeoPackage file -----------------------------------------------------------------

_local = threading.local()
_tables: dict[tuple, FeatureTable] = {}
_tables_lock = threading.Lock()


def _file_version(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError as err:
        raise ProviderConnectionError(f"GeoPackage {path} does not exist") from err
    except OSError as err:
        raise ProviderConnectionError(f"GeoPackage {path} cannot be read: {err}") from err


def _connection(path: Path) -> sqlite3.Connection:
    """This thread's read-only connection to ``path`` (reopened when the file is replaced)."""
    stat = _file_version(path)
    identity = (os.getpid(), stat.st_dev, stat.st_ino)
    pool = _local.__dict__.setdefault("connections", {})
    known = pool.get(path)
    if known is not None and known[0] == identity:
        return known[1]
    if known is not None:
        known[1].close()
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as err:
        raise ProviderConnectionError(f"cannot open {path} as SQLite database: {err}") from err
    connection.create_function(_INTERSECTS_BOX_SQL, 5, blob_intersects_box, deterministic=True)
    pool[path] = (identity, connection)
    return connection


def describe_table(path: Path, table: str) -> FeatureTable:
    """The description of features table ``table`` in GeoPackage ``path``.

    Cached per file version (inode, size, modification time). Raises ProviderConnectionError
    naming the path and table when the file, the table or its geometry column is missing.
    """
    stat = _file_version(path)
    key = (str(path), table, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    described = _tables.get(key)
    if described is None:
        described = _describe_table(_connection(path), path, table)
        with _tables_lock:
            for old in [k for k in _tables if k[:2] == key[:2]]:
                del _tables[old]
            _tables[key] = described
    return described


def _describe_table(connection: sqlite3.Connection, path: Path, table: str) -> FeatureTable:
    def rows(sql: str, *params: Any) -> list:
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as err:
            raise ProviderConnectionError(f"{path} is not a GeoPackage: {err}") from err

    has_geometry_columns = rows(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_geometry_columns'"
    )
    if not has_geometry_columns:
        raise ProviderConnectionError(f"{path} is not a GeoPackage: no gpkg_geometry_columns")
    geometry = rows(
        "SELECT table_name, column_name, geometry_type_name, srs_id FROM gpkg_geometry_columns"
        " WHERE lower(table_name) = lower(?)",
        table,
    )
    if not geometry:
        tables = [r[0] for r in rows("SELECT table_name FROM gpkg_geometry_columns")]
        raise ProviderConnectionError(
            f"table {table!r} is not a features table of {path}; features tables: "
            f"{', '.join(tables) or 'none'}"
        )
    name, geometry_column, geometry_type, srs_id = geometry[0]
    srs = rows(
        "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
        srs_id,
    )
    organization, code = srs[0] if srs else (None, None)

    info = rows(f"PRAGMA table_info({quote(name)})")
    if not info:
        raise ProviderConnectionError(f"table {table!r} of {path} does not exist")
    primary_keys = [r[1] for r in info if r[5] and r[2].upper() == "INTEGER"]
    primary_key = primary_keys[0] if len(primary_keys) == 1 else "rowid"
    columns = []
    for _, column_name, declared, *_ in info:
        if column_name in (geometry_column, primary_key):
            continue
        described = _column(column_name, declared or "")
        if described is not None:
            columns.append(described)

    rtree_name = f"rtree_{name}_{geometry_column}"
    rtree = rows("SELECT name FROM sqlite_master WHERE name = ?", rtree_name)
    return FeatureTable(
        name=name,
        geometry_column=geometry_column,
        geometry_type=geometry_type,
        srs_id=srs_id,
        srs_organization=organization,
        srs_code=int(code) if code is not None else None,
        primary_key=primary_key,
        columns=tuple(columns),
        rtree=rtree[0][0] if rtree else None,
    )


def _column(name: str, declared: str) -> Column | None:
    """Column description from a GeoPackage data type; None for BLOBs (not published)."""
    base = declared.split("(")[0].strip().upper()
    if base in _INTEGER_TYPES:
        return Column(name, declared, "integer")
    if base in _NUMBER_TYPES:
        return Column(name, declared, "number")
    if base == "BOOLEAN":
        return Column(name, declared, "boolean")
    if base == "DATE":
        return Column(name, declared, "string", "date")
    if base == "DATETIME":
        return Column(name, declared, "string", "date-time")
    # Anything else by SQLite's type affinity rules.
    if "INT" in base:
        return Column(name, declared, "integer")
    if any(t in base for t in ("CHAR", "CLOB", "TEXT")):
        return Column(name, declared, "string")
    if "BLOB" in base or not base:
        return None
    if any(t in base for t in ("REAL", "FLOA", "DOUB")):
        return Column(name, declared, "number")
    return Column(name, declared, "number")
