"""The GeoPackage store of the feature provider: tables of a GeoPackage file, read with ``sqlite3``.

Reading: each thread opens its own read-only connection (``file:...?mode=ro``) per file and
reopens it when the file is replaced (new inode), so the store is safe under threaded and
forking (gunicorn) servers. pygeoapi instantiates providers for every request, so the table
description is cached per file version (inode, size, modification time).

This Python's ``sqlite3`` cannot load SpatiaLite, so the spatial SQL is ours: the GeoPackage
R*Tree index pre-selects rows by envelope and deterministic SQLite functions registered on the
connection (:mod:`~cut_processes.providers.gpkg_binary`) decide exactly with shapely on the
geometry blob: ``cut_gpkg_intersects_box`` for ``bbox`` and ``cut_relates`` for the CQL2
spatial functions. Filtering stays in SQL: no query loads features into Python to filter them.
``cut_casei`` and ``cut_accenti`` implement CQL2's CASEI and ACCENTI.

Writing (transactions of editable collections, and :mod:`cut_processes.io.store`) goes through
:mod:`~cut_processes.providers.gpkg_write` on a separate read-write connection, one SQLite
transaction per call.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pygeoapi.provider.base import ProviderConnectionError, ProviderQueryError

from cut_processes.providers import gpkg_write
from cut_processes.providers.dialects import (
    SQL_ACCENTI,
    SQL_CASEI,
    SQL_INTERSECTS_BOX,
    SQL_RELATES,
    SQLiteDialect,
    accenti,
    casei,
    quote,
)
from cut_processes.providers.gpkg_binary import (
    GeoPackageBlobError,
    blob_intersects_box,
    blob_relates,
    blobs_from_geometries,
    geometries_from_blobs,
)
from cut_processes.providers.tables import Column, TableInfo

LOGGER = logging.getLogger(__name__)

_INTEGER_TYPES = {"INTEGER", "INT", "TINYINT", "SMALLINT", "MEDIUMINT", "BIGINT"}
_NUMBER_TYPES = {"REAL", "FLOAT", "DOUBLE"}


class GeoPackageBackend:
    """One features table of one GeoPackage file, for :class:`FeatureProvider`."""

    def __init__(self, path: Path, table: str):
        self.path = Path(path).resolve()
        self.table = describe_table(self.path, table)
        self.dialect = SQLiteDialect(self.table)

    # --- reading -----------------------------------------------------------------------------

    def fetch(self, sql: str, params: list) -> list:
        LOGGER.debug("SQL %s %s", sql, params)
        try:
            return _connection(self.path).execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise ProviderQueryError(
                f"query on {self.table.name} in {self.path} failed: {err}; SQL: {sql}"
            ) from err

    def geometries(self, values: list) -> np.ndarray:
        try:
            return geometries_from_blobs(values)
        except (GeoPackageBlobError, shapely.errors.ShapelyError) as err:
            raise ProviderQueryError(
                f"cannot decode geometries of {self.table.name} in {self.path}: {err}"
            ) from err

    def output_converter(self, column: Column) -> Callable[[Any], Any] | None:
        """How a stored value becomes a GeoJSON property value (None: as it is)."""
        if column.kind == "boolean":
            return bool
        if column.kind == "json":
            return json.loads
        return None

    # --- writing -----------------------------------------------------------------------------

    def write(self, operation: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``operation(connection)`` in one transaction on a read-write connection."""
        connection = gpkg_write.open_writer(self.path, create=False)
        try:
            with connection:
                result = operation(connection)
                gpkg_write.update_extent(connection, self.table.name)
            return result
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as err:
            raise ProviderQueryError(
                f"writing to {self.table.name} in {self.path} failed: {err}"
            ) from err
        finally:
            connection.close()

    def insert(self, geometry: Any, values: dict) -> Any:
        """Insert one feature; returns its integer key."""
        names = [self.table.geometry_column, *values]
        params = [blobs_from_geometries([geometry], self.table.srid or 0)[0]]
        params += [gpkg_write.encode_value(self.table.column(n).kind, v) for n, v in values.items()]
        sql = (
            f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)}) RETURNING {quote(self.table.primary_key)}"
        )
        return self.write(lambda connection: connection.execute(sql, params).fetchone()[0])

    def update(
        self, key: str, key_value: Any, geometry: Any, values: dict, set_geometry: bool
    ) -> int:
        assignments, params = [], []
        for name, value in values.items():
            column = self.table.column(name)
            assignments.append(f"{quote(name)} = ?")
            params.append(gpkg_write.encode_value(column.kind, value))
        if set_geometry:
            assignments.append(f"{quote(self.table.geometry_column)} = ?")
            params.append(blobs_from_geometries([geometry], self.table.srid or 0)[0])
        if not assignments:
            return self.count_where(key, key_value)
        sql = f"UPDATE {quote(self.table.name)} SET {', '.join(assignments)} WHERE {quote(key)} = ?"

        def operation(connection: sqlite3.Connection) -> int:
            return connection.execute(sql, [*params, key_value]).rowcount

        return self.write(operation)

    def delete(self, key: str, key_value: Any) -> int:
        sql = f"DELETE FROM {quote(self.table.name)} WHERE {quote(key)} = ?"
        return self.write(lambda connection: connection.execute(sql, [key_value]).rowcount)

    def count_where(self, key: str, key_value: Any) -> int:
        sql = f"SELECT COUNT(*) FROM {quote(self.table.name)} WHERE {quote(key)} = ?"
        return self.fetch(sql, [key_value])[0][0]


# --- the GeoPackage file -----------------------------------------------------------------------

_local = threading.local()
_tables: dict[tuple, TableInfo] = {}
_tables_lock = threading.Lock()


def _file_version(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError as err:
        raise ProviderConnectionError(f"GeoPackage {path} does not exist") from err
    except OSError as err:
        raise ProviderConnectionError(f"GeoPackage {path} cannot be read: {err}") from err


def register_functions(connection: sqlite3.Connection) -> None:
    """The SQL functions our queries call (exact geometry tests, CASEI, ACCENTI, ST_*)."""
    connection.create_function(SQL_INTERSECTS_BOX, 5, blob_intersects_box, deterministic=True)
    connection.create_function(SQL_RELATES, 4, blob_relates, deterministic=True)
    connection.create_function(SQL_CASEI, 1, casei, deterministic=True)
    connection.create_function(SQL_ACCENTI, 1, accenti, deterministic=True)
    gpkg_write.register_trigger_functions(connection)


def _connection(path: Path) -> sqlite3.Connection:
    """This thread's read-only connection to ``path`` (reopened when the file is replaced)."""
    stat = _file_version(path)
    identity = (os.getpid(), stat.st_dev, stat.st_ino)
    pool = _local.__dict__.setdefault("connections", {})
    known = pool.get(path)
    if known is not None and known[0] == identity:
        return known[1]
    if known is not None and known[0][0] == os.getpid():
        known[1].close()  # a connection inherited over fork() is never touched
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30.0)
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as err:
        raise ProviderConnectionError(f"cannot open {path} as SQLite database: {err}") from err
    register_functions(connection)
    pool[path] = (identity, connection)
    return connection


def describe_table(path: Path, table: str) -> TableInfo:
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


def _describe_table(connection: sqlite3.Connection, path: Path, table: str) -> TableInfo:
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
        "SELECT table_name, column_name, geometry_type_name, srs_id, z FROM gpkg_geometry_columns"
        " WHERE lower(table_name) = lower(?)",
        table,
    )
    if not geometry:
        tables = [r[0] for r in rows("SELECT table_name FROM gpkg_geometry_columns")]
        raise ProviderConnectionError(
            f"table {table!r} is not a features table of {path}; features tables: "
            f"{', '.join(tables) or 'none'}"
        )
    name, geometry_column, geometry_type, srs_id, z = geometry[0]
    srs = rows(
        "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
        srs_id,
    )
    organization, code = srs[0] if srs else (None, None)
    srid = int(code) if (organization or "").upper() == "EPSG" and code is not None else None

    info = rows(f"PRAGMA table_info({quote(name)})")
    if not info:
        raise ProviderConnectionError(f"table {table!r} of {path} does not exist")
    primary_keys = [r[1] for r in info if r[5] and r[2].upper() == "INTEGER"]
    primary_key = primary_keys[0] if len(primary_keys) == 1 else "rowid"
    json_columns = set()
    if rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_data_columns'"):
        json_columns = {
            r[0]
            for r in rows(
                "SELECT column_name FROM gpkg_data_columns WHERE lower(table_name) = lower(?)"
                " AND mime_type = 'application/json'",
                name,
            )
        }
    columns = []
    for _, column_name, declared, not_null, *_ in info:
        if column_name in (geometry_column, primary_key):
            continue
        kind = "json" if column_name in json_columns else column_kind(declared or "")
        if kind is not None:
            columns.append(Column(column_name, kind, nullable=not not_null))

    rtree_name = f"rtree_{name}_{geometry_column}"
    rtree = rows("SELECT name FROM sqlite_master WHERE name = ?", rtree_name)
    return TableInfo(
        name=name,
        geometry_column=geometry_column,
        geometry_type=str(geometry_type).upper(),
        srid=srid,
        primary_key=primary_key,
        columns=tuple(columns),
        spatial_index=rtree[0][0] if rtree else None,
        location=str(path),
        has_z=bool(z),
    )


def column_kind(declared: str) -> str | None:
    """Field kind of a GeoPackage data type; None for BLOBs (not published)."""
    base = declared.split("(")[0].strip().upper()
    if base in _INTEGER_TYPES:
        return "integer"
    if base in _NUMBER_TYPES:
        return "number"
    if base == "BOOLEAN":
        return "boolean"
    if base == "DATE":
        return "date"
    if base == "DATETIME":
        return "datetime"
    # Anything else by SQLite's type affinity rules.
    if "INT" in base:
        return "integer"
    if any(t in base for t in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if "BLOB" in base or not base:
        return None
    return "number"
