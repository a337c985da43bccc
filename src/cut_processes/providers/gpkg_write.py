"""Writing GeoPackage features tables with ``sqlite3`` (no GDAL, no SpatiaLite).

What is written follows the GeoPackage 1.2 encoding (OGC 12-128r19) as GDAL writes it, so
GDAL/QGIS read our files as their own: the core tables, a features table with an
``fid INTEGER PRIMARY KEY AUTOINCREMENT`` (ids never reused, so both stores order ties alike),
the geometry column registered in ``gpkg_geometry_columns``, the R-tree spatial index with its
standard triggers (their ST_* functions are registered on our connections), a unique index on
the id field, and JSON columns described in ``gpkg_data_columns`` (mime type
``application/json``).

Value encoding: TEXT for strings and JSON (compact JSON text), INTEGER, REAL, BOOLEAN as 0/1,
DATE as 'YYYY-MM-DD', DATETIME as UTC 'YYYY-MM-DDTHH:MM:SS.SSSZ'.

Writers open their own connection (:func:`open_writer`) and do everything of one call in one
transaction: readers (read-only connections of the provider) see the old or the new state.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely

from cut_processes.providers.dialects import quote
from cut_processes.providers.gpkg_binary import (
    GEOPACKAGE_TRIGGER_FUNCTIONS,
    blobs_from_geometries,
)
from cut_processes.providers.tables import Column, datetime_text

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10200
BUSY_TIMEOUT_S = 30.0

_DECLARED_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "DATETIME",
    "json": "TEXT",
}

_CORE_TABLES = [
    """CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (srs_name TEXT NOT NULL,
    srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
    organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT)""",
    """CREATE TABLE IF NOT EXISTS gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY,
    data_type TEXT NOT NULL, identifier TEXT UNIQUE, description TEXT DEFAULT '',
    last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
    CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id))""",
    """CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (table_name TEXT NOT NULL,
    column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
    z TINYINT NOT NULL, m TINYINT NOT NULL,
    CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
    CONSTRAINT uk_gc_table_name UNIQUE (table_name),
    CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
    CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))""",
    """CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT,
    extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
    CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""",
]
_DATA_COLUMNS = """CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL,
    column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT,
    constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
    CONSTRAINT gdc_tn UNIQUE (table_name, name))"""
_UNDEFINED_SRS = [
    ("Undefined Cartesian SRS", -1, "NONE", -1, "undefined",
     "undefined Cartesian coordinate reference system"),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined",
     "undefined geographic coordinate reference system"),
]  # fmt: skip
_RTREE_TRIGGERS = {
    "insert": "AFTER INSERT ON {t} WHEN (new.{g} NOT NULL AND NOT ST_IsEmpty(NEW.{g})) BEGIN "
    "INSERT OR REPLACE INTO {r} VALUES (NEW.{i},ST_MinX(NEW.{g}), ST_MaxX(NEW.{g}),"
    "ST_MinY(NEW.{g}), ST_MaxY(NEW.{g})); END",
    "update1": "AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} NOTNULL AND NOT "
    "ST_IsEmpty(NEW.{g})) BEGIN INSERT OR REPLACE INTO {r} VALUES (NEW.{i},ST_MinX(NEW.{g}), "
    "ST_MaxX(NEW.{g}),ST_MinY(NEW.{g}), ST_MaxY(NEW.{g})); END",
    "update2": "AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} ISNULL OR "
    "ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END",
    "update3": "AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{g} NOTNULL AND NOT "
    "ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; INSERT OR REPLACE INTO {r} "
    "VALUES (NEW.{i},ST_MinX(NEW.{g}), ST_MaxX(NEW.{g}),ST_MinY(NEW.{g}), ST_MaxY(NEW.{g})); END",
    "update4": "AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{g} ISNULL OR "
    "ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END",
    "delete": "AFTER DELETE ON {t} WHEN old.{g} NOT NULL BEGIN DELETE FROM {r} "
    "WHERE id = OLD.{i}; END",
}

GEOMETRY_COLUMN = "geom"
PRIMARY_KEY = "fid"


def register_trigger_functions(connection: sqlite3.Connection) -> None:
    """The ST_* functions that GeoPackage R-tree triggers call."""
    for name, function in GEOPACKAGE_TRIGGER_FUNCTIONS.items():
        connection.create_function(name, 1, function, deterministic=True)


def open_writer(path: Path, create: bool = True) -> sqlite3.Connection:
    """A read-write connection to GeoPackage ``path`` (a new, empty GeoPackage if missing).

    The connection is in manual transaction mode (``autocommit=False``): use it as a context
    manager or call commit/rollback.
    """
    path = Path(path)
    exists = path.exists()
    if not exists and not create:
        raise FileNotFoundError(f"GeoPackage {path} does not exist")
    if not exists:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, autocommit=False)
    register_trigger_functions(connection)
    if not exists:
        _initialise(connection)
    else:
        has_core = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_contents'"
        ).fetchone()
        if not has_core:
            connection.close()
            raise ValueError(f"{path} is not a GeoPackage (no gpkg_contents table)")
    return connection


def _initialise(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    connection.execute(f"PRAGMA user_version = {USER_VERSION}")
    for sql in _CORE_TABLES:
        connection.execute(sql)
    connection.executemany(
        "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", _UNDEFINED_SRS
    )
    ensure_srs(connection, 4326)
    connection.commit()


def ensure_srs(connection: sqlite3.Connection, srid: int) -> None:
    """Register EPSG:``srid`` in gpkg_spatial_ref_sys (WKT 1, as GeoPackage 1.2 requires)."""
    known = connection.execute(
        "SELECT 1 FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (srid,)
    ).fetchone()
    if known:
        return
    crs = pyproj.CRS.from_epsg(srid)
    connection.execute(
        "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, 'EPSG', ?, ?, NULL)",
        (crs.name, srid, srid, crs.to_wkt("WKT1_GDAL")),
    )


def table_exists(connection: sqlite3.Connection, name: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM gpkg_contents WHERE lower(table_name) = lower(?)", (name,)
    ).fetchone()
    return row is not None


def features_tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT table_name FROM gpkg_contents WHERE data_type = 'features' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def drop_features_table(connection: sqlite3.Connection, name: str) -> None:
    """Remove a features table with its index, triggers and registrations."""
    rtree = f"rtree_{name}_{GEOMETRY_COLUMN}"
    geometry = connection.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?)", (name,)
    ).fetchone()
    if geometry:
        rtree = f"rtree_{name}_{geometry[0]}"
    connection.execute(f"DROP TABLE IF EXISTS {quote(rtree)}")
    connection.execute(f"DROP TABLE IF EXISTS {quote(name)}")
    for registry in ("gpkg_geometry_columns", "gpkg_extensions", "gpkg_contents"):
        connection.execute(f"DELETE FROM {registry} WHERE lower(table_name) = lower(?)", (name,))
    for optional in ("gpkg_data_columns", "gpkg_ogr_contents"):
        if _has_table(connection, optional):
            connection.execute(
                f"DELETE FROM {optional} WHERE lower(table_name) = lower(?)", (name,)
            )


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def create_features_table(
    connection: sqlite3.Connection,
    name: str,
    columns: Sequence[Column],
    geometry_type: str,
    srid: int,
    id_field: str,
    has_z: bool = False,
) -> None:
    """Create an empty features table (fid key, columns, geometry, R-tree, unique id index)."""
    ensure_srs(connection, srid)
    definitions = [f"{quote(PRIMARY_KEY)} INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL",
                   f"{quote(GEOMETRY_COLUMN)} {geometry_type}"]  # fmt: skip
    for column in columns:
        null = "" if column.nullable else " NOT NULL"
        definitions.append(f"{quote(column.name)} {_DECLARED_TYPES[column.kind]}{null}")
    connection.execute(f"CREATE TABLE {quote(name)} ({', '.join(definitions)})")
    connection.execute(
        f"CREATE UNIQUE INDEX {quote(f'{name}_{id_field}_idx')} ON {quote(name)} "
        f"({quote(id_field)})"
    )
    connection.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id)"
        " VALUES (?, 'features', ?, '', ?)",
        (name, name, srid),
    )
    connection.execute(
        "INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, ?, 0)",
        (name, GEOMETRY_COLUMN, geometry_type, srid, 1 if has_z else 0),
    )
    _create_rtree(connection, name)
    describe_json_columns(connection, name, [c for c in columns if c.kind == "json"])


def _create_rtree(connection: sqlite3.Connection, name: str) -> None:
    rtree = f"rtree_{name}_{GEOMETRY_COLUMN}"
    connection.execute(
        f"CREATE VIRTUAL TABLE {quote(rtree)} USING rtree(id, minx, maxx, miny, maxy)"
    )
    names = {"t": quote(name), "g": quote(GEOMETRY_COLUMN), "i": quote(PRIMARY_KEY),
             "r": quote(rtree)}  # fmt: skip
    for suffix, body in _RTREE_TRIGGERS.items():
        trigger = quote(f"{rtree}_{suffix}")
        connection.execute(f"CREATE TRIGGER {trigger} {body.format(**names)}")
    connection.execute(
        "INSERT INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', "
        "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
        (name, GEOMETRY_COLUMN),
    )


def describe_json_columns(
    connection: sqlite3.Connection, name: str, columns: Sequence[Column]
) -> None:
    """Mark TEXT columns as JSON (mime type application/json), as GDAL does."""
    if not columns:
        return
    connection.execute(_DATA_COLUMNS)
    connection.execute(
        "INSERT OR IGNORE INTO gpkg_extensions VALUES ('gpkg_data_columns', NULL, 'gpkg_schema',"
        " 'http://www.geopackage.org/spec121/#extension_schema', 'read-write')"
    )
    for column in columns:
        connection.execute(
            "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, mime_type) "
            "VALUES (?, ?, 'application/json')",
            (name, column.name),
        )


def add_columns(connection: sqlite3.Connection, name: str, columns: Sequence[Column]) -> None:
    """Add nullable columns to an existing features table."""
    for column in columns:
        connection.execute(
            f"ALTER TABLE {quote(name)} ADD COLUMN {quote(column.name)} "
            f"{_DECLARED_TYPES[column.kind]}"
        )
    describe_json_columns(connection, name, [c for c in columns if c.kind == "json"])


def encode_value(kind: str, value: Any) -> Any:
    """A checked Python value (``tables.record_value``) as the GeoPackage stores it."""
    if value is None:
        return None
    if kind == "boolean":
        return int(value)
    if kind == "date":
        return value.isoformat()
    if kind == "datetime":
        return datetime_text(value)
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def insert_rows(
    connection: sqlite3.Connection,
    name: str,
    columns: Sequence[Column],
    records: Iterable[tuple[Any, dict]],
    srid: int,
) -> int:
    """Insert (geometry, {column: checked value}) records; returns how many.

    Geometries are shapely geometries in the table's CRS (or None); blobs are encoded for all
    records at once.
    """
    records = list(records)
    if not records:
        return 0
    geometries = np.empty(len(records), dtype=object)
    geometries[:] = [geometry for geometry, _ in records]
    blobs = blobs_from_geometries(geometries, srid)
    names = [GEOMETRY_COLUMN, *(c.name for c in columns)]
    sql = (
        f"INSERT INTO {quote(name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    rows = (
        [blob, *(encode_value(c.kind, values.get(c.name)) for c in columns)]
        for blob, (_, values) in zip(blobs, records, strict=True)
    )
    connection.executemany(sql, rows)
    return len(records)


def update_extent(connection: sqlite3.Connection, name: str) -> None:
    """Refresh gpkg_contents' extent (from the R-tree) and last_change."""
    rtree = f"rtree_{name}_{GEOMETRY_COLUMN}"
    extent = (None, None, None, None)
    if _has_table(connection, rtree):
        extent = connection.execute(
            f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {quote(rtree)}"
        ).fetchone()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"
    connection.execute(
        "UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, last_change = ? "
        "WHERE lower(table_name) = lower(?)",
        (*extent, now, name),
    )
    if _has_table(connection, "gpkg_ogr_contents"):
        # GDAL's cached feature count: let GDAL count again.
        connection.execute(
            "UPDATE gpkg_ogr_contents SET feature_count = NULL WHERE lower(table_name) = lower(?)",
            (name,),
        )


def geometry_has_z(geometries: Sequence) -> bool:
    array = np.asarray(geometries, dtype=object)
    present = array[[g is not None for g in array.tolist()]]
    return bool(len(present)) and bool(shapely.has_z(present).any())
