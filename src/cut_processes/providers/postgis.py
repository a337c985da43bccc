"""The PostGIS store of the feature provider: tables in a PostgreSQL database with PostGIS.

Configured by a ``postgresql://`` URL (``store:`` of the provider, usually ``${CUT_STORE}``);
the table has the collection's ``table`` name and lives on the connection's ``search_path``.
Tables written by :mod:`cut_processes.io.store` look like the GeoPackage ones: an identity key
``fid`` (orders ties, as the GeoPackage's fid does), a ``geom`` column with the storage SRID, a
GiST index on it and a unique index on the id field; field kinds map to text, bigint, double
precision, boolean, date, timestamptz and jsonb.

Connections: one per thread and process (opened lazily, reopened when broken or after a
fork: a connection inherited from the parent is never used), autocommit for reads, with JIT
and parallel workers off (they slow short page queries down); writes run in an explicit
transaction on the same connection. psycopg prepares statements that repeat, so the plans of
paging queries are reused. Rows come in psycopg's binary format and
geometries as WKB (``ST_AsBinary``), decoded for a whole page in one ``shapely.from_wkb`` call.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb
from pygeoapi.provider.base import ProviderConnectionError, ProviderQueryError

from cut_processes.providers.dialects import PostgreSQLDialect, quote
from cut_processes.providers.tables import Column, TableInfo, datetime_text

LOGGER = logging.getLogger(__name__)

GEOMETRY_COLUMN = "geom"
PRIMARY_KEY = "fid"
CONNECT_TIMEOUT_S = 10

#: Column types of the feature tables by field kind, and back from PostgreSQL's type names.
SQL_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
    "json": "jsonb",
}
KINDS = {
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "uuid": "string",
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "float4": "number",
    "float8": "number",
    "numeric": "number",
    "bool": "boolean",
    "date": "date",
    "timestamp": "datetime",
    "timestamptz": "datetime",
    "json": "json",
    "jsonb": "json",
}


def is_postgresql_url(location: Any) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(invalid URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


# --- connections ---------------------------------------------------------------------------------

_local = threading.local()


def connect(url: str, autocommit: bool = True) -> psycopg.Connection:
    """A new connection; ProviderConnectionError (without the password) when it fails."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as err:
        raise ProviderConnectionError(f"cannot connect to {safe_url(url)}: {err}") from err


def connection(url: str) -> psycopg.Connection:
    """This thread's connection to ``url`` (autocommit), reopened when broken or forked."""
    pool = _local.__dict__.setdefault("connections", {})
    known = pool.get(url)
    if known is not None:
        pid, existing = known
        if pid == os.getpid() and not existing.closed and not existing.broken:
            return existing
    fresh = connect(url)
    # Pages are short queries: JIT compilation (tens of ms once a plan looks costly) and
    # parallel workers cost more than they save; a bbox + filter page took 90 ms with them
    # and 10 ms without on 100,000 buildings (bench/features.py).
    fresh.execute("SET jit = off")
    fresh.execute("SET max_parallel_workers_per_gather = 0")
    pool[url] = (os.getpid(), fresh)
    return fresh


def has_icu(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'").fetchone()
    return row is not None


# --- describing --------------------------------------------------------------------------------

_tables: dict[tuple, tuple[TableInfo, bool]] = {}
_tables_lock = threading.Lock()


def describe_table(url: str, table: str) -> tuple[TableInfo, bool]:
    """(description of ``table``, whether ICU collations exist), cached per table version.

    The version is the table's oid and column count: replacing the table (new oid) or adding
    columns describes it again. Raises ProviderConnectionError naming the table.
    """
    conn = connection(url)
    try:
        row = conn.execute(
            "SELECT c.oid, c.relnatts FROM pg_class c WHERE c.oid = to_regclass(%s)",
            [quote(table)],
        ).fetchone()
    except psycopg.Error as err:
        message = f"cannot read table {table!r} in {safe_url(url)}: {err}"
        raise ProviderConnectionError(message) from err
    if row is None:
        tables = collections(conn)
        raise ProviderConnectionError(
            f"table {table!r} is not a features table of {safe_url(url)}; features tables: "
            f"{', '.join(tables) or 'none'}"
        )
    key = (url, table, row[0], row[1])
    described = _tables.get(key)
    if described is None:
        described = (_describe(conn, url, table, row[0]), has_icu(conn))
        with _tables_lock:
            for old in [k for k in _tables if k[:2] == key[:2]]:
                del _tables[old]
            _tables[key] = described
    return described


def _describe(conn: psycopg.Connection, url: str, table: str, oid: int) -> TableInfo:
    attributes = conn.execute(
        "SELECT a.attname, t.typname, a.attnotnull,"
        " CASE WHEN t.typname = 'geometry' THEN postgis_typmod_srid(a.atttypmod) END,"
        " CASE WHEN t.typname = 'geometry' THEN postgis_typmod_type(a.atttypmod) END,"
        " CASE WHEN t.typname = 'geometry' THEN postgis_typmod_dims(a.atttypmod) END"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [oid],
    ).fetchall()
    geometries = [a for a in attributes if a[1] == "geometry"]
    if not geometries:
        raise ProviderConnectionError(f"table {table!r} of {safe_url(url)} has no geometry column")
    geometry_column, _, _, srid, geometry_type, dims = geometries[0]
    keys = conn.execute(
        "SELECT a.attname, t.typname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE i.indrelid = %s AND i.indisprimary",
        [oid],
    ).fetchall()
    integer_keys = [k[0] for k in keys if k[1] in ("int2", "int4", "int8")]
    primary_key = integer_keys[0] if len(keys) == 1 and integer_keys else "ctid"
    gist = conn.execute(
        "SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
        " JOIN pg_am am ON am.oid = ic.relam WHERE i.indrelid = %s AND am.amname = 'gist'",
        [oid],
    ).fetchone()
    columns = []
    for name, typname, not_null, *_ in attributes:
        if name in (geometry_column, primary_key) or typname not in KINDS:
            continue
        columns.append(Column(name, KINDS[typname], nullable=not not_null))
    canonical = (geometry_type or "GEOMETRY").upper().rstrip("ZM") or "GEOMETRY"
    return TableInfo(
        name=table,
        geometry_column=geometry_column,
        geometry_type=canonical,
        srid=int(srid) if srid else None,
        primary_key=primary_key,
        columns=tuple(columns),
        spatial_index=gist[0] if gist else None,
        location=safe_url(url),
        has_z=bool(dims and dims >= 3),
    )


def collections(conn: psycopg.Connection) -> list[str]:
    """Tables with a geometry column on the search path."""
    rows = conn.execute(
        "SELECT DISTINCT c.relname FROM pg_class c"
        " JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE c.relkind IN ('r', 'p') AND t.typname = 'geometry' AND NOT a.attisdropped"
        " AND c.relnamespace = ANY (SELECT oid FROM pg_namespace"
        "   WHERE nspname = ANY (current_schemas(false)))"
        " ORDER BY c.relname"
    ).fetchall()
    return [r[0] for r in rows]


# --- the backend of the provider -----------------------------------------------------------------


def _output(kind: str) -> Callable[[Any], Any] | None:
    if kind == "datetime":
        return lambda value: value if not isinstance(value, datetime) else datetime_text(value)
    if kind == "date":
        return lambda value: value.isoformat() if isinstance(value, date) else value
    if kind == "number":
        return lambda value: float(value) if isinstance(value, Decimal) else value
    return None


class PostGISBackend:
    """One table of a PostGIS database, for :class:`FeatureProvider`."""

    def __init__(self, url: str, table: str):
        self.url = url
        self.table, icu = describe_table(url, table)
        self.dialect = PostgreSQLDialect(self.table, icu=icu)

    def fetch(self, sql: str, params: list) -> list:
        LOGGER.debug("SQL %s %s", sql, params)
        conn = connection(self.url)
        try:
            return conn.execute(sql, params, binary=True).fetchall()
        except psycopg.errors.DataException as err:
            # Values the database refuses (e.g. out of range): the request's fault.
            raise ProviderQueryError(f"query on {self.table.name} failed: {err}") from err
        except psycopg.Error as err:
            raise ProviderQueryError(
                f"query on {self.table.name} in {self.table.location} failed: {err}; SQL: {sql}"
            ) from err

    def geometries(self, values: list) -> np.ndarray:
        wkbs = np.empty(len(values), dtype=object)
        wkbs[:] = [None if v is None else bytes(v) for v in values]
        return shapely.from_wkb(wkbs)

    def output_converter(self, column: Column) -> Callable[[Any], Any] | None:
        return _output(column.kind)

    # --- writing ---------------------------------------------------------------------------

    def _write(self, statement: str, params: list) -> int:
        conn = connection(self.url)
        try:
            with conn.transaction():
                return conn.execute(statement, params).rowcount
        except psycopg.errors.UniqueViolation:
            raise
        except psycopg.Error as err:
            raise ProviderQueryError(f"writing to {self.table.name} failed: {err}") from err

    def insert(self, geometry: Any, values: dict) -> Any:
        """Insert one feature; returns its integer key."""
        names = [self.table.geometry_column, *values]
        placeholders = [self._geometry_placeholder(), *("%s" for _ in values)]
        params = [self._geometry_param(geometry)]
        params += [db_value(self.table.column(n).kind, v) for n, v in values.items()]
        statement = (
            f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join(placeholders)}) RETURNING {quote(self.table.primary_key)}"
        )
        conn = connection(self.url)
        try:
            with conn.transaction():
                return conn.execute(statement, params).fetchone()[0]
        except psycopg.errors.UniqueViolation:
            raise
        except psycopg.Error as err:
            raise ProviderQueryError(f"writing to {self.table.name} failed: {err}") from err

    def update(
        self, key: str, key_value: Any, geometry: Any, values: dict, set_geometry: bool
    ) -> int:
        assignments = [f"{quote(n)} = %s" for n in values]
        params = [db_value(self.table.column(n).kind, v) for n, v in values.items()]
        if set_geometry:
            assignments.append(
                f"{quote(self.table.geometry_column)} = {self._geometry_placeholder()}"
            )
            params.append(self._geometry_param(geometry))
        if not assignments:
            return self.count_where(key, key_value)
        statement = (
            f"UPDATE {quote(self.table.name)} SET {', '.join(assignments)} WHERE {quote(key)} = %s"
        )
        return self._write(statement, [*params, key_value])

    def delete(self, key: str, key_value: Any) -> int:
        statement = f"DELETE FROM {quote(self.table.name)} WHERE {quote(key)} = %s"
        return self._write(statement, [key_value])

    def count_where(self, key: str, key_value: Any) -> int:
        statement = f"SELECT COUNT(*) FROM {quote(self.table.name)} WHERE {quote(key)} = %s"
        return self.fetch(statement, [key_value])[0][0]

    def _geometry_placeholder(self) -> str:
        return "ST_GeomFromEWKB(%s)"

    def _geometry_param(self, geometry: Any) -> bytes | None:
        if geometry is None or geometry.is_empty:
            return None
        return shapely.to_wkb(
            shapely.set_srid(geometry, int(self.table.srid or 0)), include_srid=True
        )


def db_value(kind: str, value: Any) -> Any:
    """A checked Python value (``tables.record_value``) as a psycopg parameter."""
    if kind == "json" and value is not None:
        return Jsonb(value)
    return value


# --- writing tables (io.store) -------------------------------------------------------------------


def create_table_sql(
    name: str, columns: Sequence[Column], geometry_type: str, srid: int, has_z: bool
) -> pgsql.Composed:
    geometry = f"geometry({geometry_type_sql(geometry_type)}{'Z' if has_z else ''}, {int(srid)})"
    definitions = [
        pgsql.SQL("{} bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY").format(
            pgsql.Identifier(PRIMARY_KEY)
        ),
        pgsql.SQL("{} " + geometry).format(pgsql.Identifier(GEOMETRY_COLUMN)),
    ]
    for column in columns:
        null = "" if column.nullable else " NOT NULL"
        definitions.append(
            pgsql.SQL("{} " + SQL_TYPES[column.kind] + null).format(pgsql.Identifier(column.name))
        )
    return pgsql.SQL("CREATE TABLE {} ({})").format(
        pgsql.Identifier(name), pgsql.SQL(", ").join(definitions)
    )


def copy_rows(
    conn: psycopg.Connection,
    name: str,
    columns: Sequence[Column],
    records: Iterable[tuple[Any, dict]],
    srid: int,
) -> int:
    """COPY (geometry, {column: checked value}) records into table ``name``; returns how many."""
    records = list(records)
    if not records:
        return 0
    geometries = np.empty(len(records), dtype=object)
    geometries[:] = [g if g is not None and not g.is_empty else None for g, _ in records]
    ewkb = shapely.to_wkb(shapely.set_srid(geometries, srid), hex=True, include_srid=True)
    names = [GEOMETRY_COLUMN, *(c.name for c in columns)]
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        pgsql.Identifier(name), pgsql.SQL(", ").join(pgsql.Identifier(n) for n in names)
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for hex_geometry, (_, values) in zip(ewkb.tolist(), records, strict=True):
            copy.write_row([hex_geometry, *(db_value(c.kind, values.get(c.name)) for c in columns)])
    return len(records)


def geometry_type_sql(geometry_type: str) -> str:
    """PostGIS type name of a canonical geometry type ('MULTIPOLYGON' -> 'MultiPolygon')."""
    names = {
        "GEOMETRY": "Geometry",
        "POINT": "Point",
        "LINESTRING": "LineString",
        "POLYGON": "Polygon",
        "MULTIPOINT": "MultiPoint",
        "MULTILINESTRING": "MultiLineString",
        "MULTIPOLYGON": "MultiPolygon",
        "GEOMETRYCOLLECTION": "GeometryCollection",
    }
    return names[geometry_type.upper()]
