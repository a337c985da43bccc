"""The write side of the feature stores: what importers, the demo loader and result publishing
call to put features where the feature provider serves them from.

``open_store(location)`` gives a :class:`FeatureStore`: a :class:`PostGISStore` for a
``postgresql://`` URL, otherwise a :class:`GeoPackageStore` on that path (a new GeoPackage is
created when the file is missing). Both write the same tables (see
:mod:`cut_processes.providers.gpkg_write` and :mod:`cut_processes.providers.postgis`): an
integer key ``fid`` in insertion order, a ``geom`` column in the given SRID with a spatial
index, a unique index on the id field, and one column per field.

Features are GeoJSON-like dicts ``{"id": ..., "geometry": {...} | None, "properties": {...}}``
with coordinates in ``srid`` (a shapely geometry is accepted for ``geometry`` too). The id is
``properties[id_field]``, else the feature's ``id``. ``fields`` maps property names to kinds:
string, integer, number, boolean, date, datetime, json; the id field's kind is inferred from the
first id when ``fields`` does not name it. Values are checked strictly
(:func:`cut_processes.providers.tables.record_value`): a property that is not in ``fields``, a
value of another type, a geometry of another type than ``geometry_type`` (``"Geometry"`` takes
any), a missing or duplicate id all raise ``ValueError`` naming the collection, the feature
and the property, and nothing is written.

Atomicity: ``replace_collection`` builds the new table and swaps it in within one transaction
(readers see the old or the new collection); ``append_features`` and ``delete_features`` are
one transaction each. ``load_demo_into`` copies the demo district's served layers into a store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import psycopg
import shapely
from psycopg import sql as pgsql
from shapely.geometry import shape

from cut_processes.providers import gpkg_write, postgis
from cut_processes.providers.dialects import quote
from cut_processes.providers.geopackage import GeoPackageBackend
from cut_processes.providers.tables import (
    KINDS,
    Column,
    ValueTypeError,
    geometry_type_name,
    record_value,
)

RESERVED = (gpkg_write.PRIMARY_KEY, gpkg_write.GEOMETRY_COLUMN)


class FeatureStore(Protocol):
    """Where collections are written; see the module docstring for the rules."""

    def replace_collection(
        self,
        name: str,
        features: Iterable[dict],
        *,
        fields: dict[str, str],
        geometry_type: str,
        srid: int = 25832,
        id_field: str = "id",
    ) -> int: ...

    def append_features(
        self,
        name: str,
        features: Iterable[dict],
        *,
        fields: dict[str, str],
        geometry_type: str,
        srid: int = 25832,
        id_field: str = "id",
    ) -> int: ...

    def delete_features(self, name: str, where: dict[str, Any]) -> int: ...

    def collections(self) -> list[str]: ...

    def count(self, name: str) -> int: ...


def open_store(location: str | Path) -> FeatureStore:
    """The store at ``location``: ``postgresql://...`` -> PostGIS, else a GeoPackage path."""
    if postgis.is_postgresql_url(str(location)):
        return PostGISStore(str(location))
    return GeoPackageStore(Path(location))


# --- checking what is written -------------------------------------------------------------------


class _Prepared:
    """Columns and (geometry, values) records of a write, all checked."""

    def __init__(
        self,
        name: str,
        features: Iterable[dict],
        fields: dict[str, str],
        geometry_type: str,
        id_field: str,
    ):
        _check_name(name, "collection name")
        self.geometry_type = geometry_type_name(geometry_type)
        for field, kind in fields.items():
            _check_name(field, "field name")
            if field in RESERVED:
                raise ValueError(f"field name {field!r} is reserved ({', '.join(RESERVED)})")
            if kind not in KINDS:
                raise ValueError(f"field {field!r} has kind {kind!r}; kinds: {', '.join(KINDS)}")
        if id_field in RESERVED:
            raise ValueError(f"id_field {id_field!r} is reserved ({', '.join(RESERVED)})")
        features = list(features)
        id_kind = fields.get(id_field)
        if id_kind is None:
            first = _feature_id(features[0], id_field) if features else None
            id_kind = (
                "integer" if isinstance(first, int) and not isinstance(first, bool) else "string"
            )
        if id_kind not in ("string", "integer"):
            raise ValueError(f"id_field {id_field!r} must be a string or integer field")
        self.id_column = Column(id_field, id_kind, nullable=False)
        self.columns = [self.id_column] + [Column(f, k) for f, k in fields.items() if f != id_field]
        by_name = {c.name: c for c in self.columns}
        self.records = []
        seen: set = set()
        for index, feature in enumerate(features):
            self.records.append(self._record(name, index, feature, by_name, seen))
        self.has_z = gpkg_write.geometry_has_z([geometry for geometry, _ in self.records])

    def _record(self, name: str, index: int, feature: Any, columns: dict, seen: set) -> tuple:
        if not isinstance(feature, dict):
            raise ValueError(f"collection {name!r}, feature {index}: not a dict")
        properties = feature.get("properties") or {}
        identifier = _feature_id(feature, self.id_column.name)
        where = f"collection {name!r}, feature {index} (id {identifier!r})"
        if identifier is None:
            raise ValueError(f"{where}: no id (property {self.id_column.name!r} or 'id')")
        values = {}
        for key, value in properties.items():
            column = columns.get(key)
            if column is None:
                raise ValueError(
                    f"{where}: property {key!r} is not in fields ({', '.join(columns)})"
                )
            try:
                values[key] = record_value(column, value)
            except ValueTypeError as err:
                raise ValueError(f"{where}: {err}") from err
        try:
            values[self.id_column.name] = record_value(self.id_column, identifier)
        except ValueTypeError as err:
            raise ValueError(f"{where}: {err}") from err
        if values[self.id_column.name] in seen:
            raise ValueError(f"{where}: the id occurs twice")
        seen.add(values[self.id_column.name])
        geometry = feature.get("geometry")
        if geometry is not None and not isinstance(geometry, shapely.Geometry):
            try:
                geometry = shape(geometry)
            except Exception as err:  # shapely raises several kinds for broken GeoJSON
                raise ValueError(f"{where}: geometry is not valid GeoJSON: {err}") from err
        if geometry is not None:
            kind = geometry.geom_type.upper()
            if self.geometry_type not in ("GEOMETRY", kind):
                raise ValueError(
                    f"{where}: geometry is a {geometry.geom_type}, the collection takes "
                    f"{self.geometry_type.title()}"
                )
            if geometry.is_empty:
                geometry = None
        return geometry, values


def _feature_id(feature: dict, id_field: str) -> Any:
    if not isinstance(feature, dict):
        return None
    value = (feature.get("properties") or {}).get(id_field)
    return value if value is not None else feature.get("id")


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 60:
        raise ValueError(f"{what} {name!r} must be a non-empty string of at most 60 characters")


# --- GeoPackage ---------------------------------------------------------------------------------


class GeoPackageStore:
    """Collections as features tables of one GeoPackage file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        gpkg_write.open_writer(self.path, create=True).close()

    def __repr__(self) -> str:
        return f"GeoPackageStore({str(self.path)!r})"

    def _write(self, operation) -> Any:
        connection = gpkg_write.open_writer(self.path, create=False)
        try:
            with connection:
                return operation(connection)
        except sqlite3.IntegrityError as err:
            raise ValueError(f"writing to {self.path} failed: {err}") from err
        finally:
            connection.close()

    def replace_collection(
        self,
        name: str,
        features: Iterable[dict],
        *,
        fields: dict[str, str],
        geometry_type: str,
        srid: int = 25832,
        id_field: str = "id",
    ) -> int:
        prepared = _Prepared(name, features, fields, geometry_type, id_field)

        def operation(connection: sqlite3.Connection) -> int:
            gpkg_write.drop_features_table(connection, name)
            gpkg_write.create_features_table(
                connection, name, prepared.columns, prepared.geometry_type, srid, id_field,
                prepared.has_z,
            )  # fmt: skip
            written = gpkg_write.insert_rows(
                connection, name, prepared.columns, prepared.records, srid
            )
            gpkg_write.update_extent(connection, name)
            return written

        return self._write(operation)

    def append_features(
        self,
        name: str,
        features: Iterable[dict],
        *,
        fields: dict[str, str],
        geometry_type: str,
        srid: int = 25832,
        id_field: str = "id",
    ) -> int:
        prepared = _Prepared(name, features, fields, geometry_type, id_field)

        def operation(connection: sqlite3.Connection) -> int:
            if not gpkg_write.table_exists(connection, name):
                gpkg_write.create_features_table(
                    connection, name, prepared.columns, prepared.geometry_type, srid, id_field,
                    prepared.has_z,
                )  # fmt: skip
            else:
                existing = self._columns(connection, name)
                _check_compatible(name, existing, prepared.columns)
                missing = [c for c in prepared.columns if c.name not in existing]
                gpkg_write.add_columns(connection, name, missing)
            written = gpkg_write.insert_rows(
                connection, name, prepared.columns, prepared.records, srid
            )
            gpkg_write.update_extent(connection, name)
            return written

        return self._write(operation)

    def _columns(self, connection: sqlite3.Connection, name: str) -> dict[str, Column]:
        from cut_processes.providers.geopackage import column_kind

        json_columns: set[str] = set()
        if connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'gpkg_data_columns'"
        ).fetchone():
            json_columns = {
                r[0]
                for r in connection.execute(
                    "SELECT column_name FROM gpkg_data_columns WHERE table_name = ? "
                    "AND mime_type = 'application/json'",
                    (name,),
                )
            }
        columns = {}
        for _, column, declared, *_ in connection.execute(f"PRAGMA table_info({quote(name)})"):
            kind = "json" if column in json_columns else column_kind(declared or "")
            columns[column] = Column(column, kind or "blob")
        return columns

    def delete_features(self, name: str, where: dict[str, Any]) -> int:
        def operation(connection: sqlite3.Connection) -> int:
            if not gpkg_write.table_exists(connection, name):
                return 0
            columns = self._columns(connection, name)
            clauses, params = _where(name, columns, where, "?")
            params = [gpkg_write.encode_value(columns[k].kind, v) for k, v in params]
            deleted = connection.execute(f"DELETE FROM {quote(name)}{clauses}", params).rowcount
            gpkg_write.update_extent(connection, name)
            return deleted

        return self._write(operation)

    def collections(self) -> list[str]:
        connection = gpkg_write.open_writer(self.path, create=False)
        try:
            return gpkg_write.features_tables(connection)
        finally:
            connection.close()

    def count(self, name: str) -> int:
        known = self.collections()
        if name not in known:
            raise ValueError(
                f"collection {name!r} is not in {self.path}; collections: {', '.join(known)}"
            )
        backend = GeoPackageBackend(self.path, name)
        return backend.fetch(f"SELECT COUNT(*) FROM {quote(name)}", [])[0][0]


def _check_compatible(name: str, existing: dict[str, Column], columns: list[Column]) -> None:
    for column in columns:
        known = existing.get(column.name)
        if known is not None and known.kind != column.kind:
            raise ValueError(
                f"collection {name!r}: field {column.name!r} is {known.kind} in the store, "
                f"not {column.kind}"
            )


def _where(
    name: str, columns: dict[str, Column], where: dict[str, Any], placeholder: str
) -> tuple[str, list[tuple[str, Any]]]:
    """' WHERE a = ? AND b IS NULL' for equality conditions; params as (column, value)."""
    clauses, params = [], []
    for key, value in where.items():
        column = columns.get(key)
        if column is None:
            raise ValueError(
                f"collection {name!r} has no field {key!r}; fields: {', '.join(columns)}"
            )
        if value is None:
            clauses.append(f"{quote(key)} IS NULL")
            continue
        try:
            checked = record_value(column, value)
        except ValueTypeError as err:
            raise ValueError(f"collection {name!r}: {err}") from err
        clauses.append(f"{quote(key)} = {placeholder}")
        params.append((key, checked))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# --- PostGIS -------------------------------------------------------------------------------------


class PostGISStore:
    """Collections as tables of a PostgreSQL database with PostGIS (on the search path)."""

    def __init__(self, url: str):
        self.url = url
        with self._connect(autocommit=True) as conn:
            installed = conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'postgis'"
            ).fetchone()
            if not installed:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except psycopg.Error as err:
                    raise ValueError(
                        f"PostGIS is not installed in {postgis.safe_url(url)} and cannot be "
                        f"created: {err}"
                    ) from err

    def __repr__(self) -> str:
        return f"PostGISStore({postgis.safe_url(self.url)!r})"

    def _connect(self, autocommit: bool = False) -> psycopg.Connection:
        return postgis.connect(self.url, autocommit=autocommit)

    def _write(self, operation) -> Any:
        try:
            with self._connect() as conn:
                return operation(conn)
        except psycopg.errors.UniqueViolation as err:
            raise ValueError(f"writing to {postgis.safe_url(self.url)} failed: {err}") from err

    @staticmethod
    def _exists(conn: psycopg.Connection, name: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", [quote(name)]).fetchone()
        return row[0] is not None

    @staticmethod
    def _lock(conn: psycopg.Connection, name: str) -> None:
        # Writers of one collection take turns (creating it, swapping it in).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"cut-store:{name}"])

    def _create(self, conn, name: str, prepared: _Prepared, srid: int, suffix: str = "") -> None:
        table = name + suffix
        conn.execute(
            postgis.create_table_sql(
                table, prepared.columns, prepared.geometry_type, srid, prepared.has_z
            )
        )
        conn.execute(
            pgsql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
                pgsql.Identifier(f"{table}_{prepared.id_column.name}_idx"),
                pgsql.Identifier(table),
                pgsql.Identifier(prepared.id_column.name),
            )
        )

    @staticmethod
    def _spatial_index(conn, table: str) -> None:
        conn.execute(
            pgsql.SQL("CREATE INDEX {} ON {} USING GIST ({})").format(
                pgsql.Identifier(f"{table}_{postgis.GEOMETRY_COLUMN}_idx"),
                pgsql.Identifier(table),
                pgsql.Identifier(postgis.GEOMETRY_COLUMN),
            )
        )
        conn.execute(pgsql.SQL("ANALYZE {}").format(pgsql.Identifier(table)))

    def replace_collection(
        self,
        name: str,
        features: Iterable[dict],
        *,
        fields: dict[str, str],
        geometry_type: str,
        srid: int = 25832,
        id_field: str = "id",
    ) -> int:
        prepared = _Prepared(name, features, fields, geometry_type, id_field)
        staging = f"{name}__new"

        def operation(conn: psycopg.Connection) -> int:
            self._lock(conn, name)
            conn.execute(pgsql.SQL("DROP TABLE IF EXISTS {}").format(pgsql.Identifier(staging)))
            self._create(conn, name, prepared, srid, suffix="__new")
            written = postgis.copy_rows(conn, staging, prepared.columns, prepared.records, srid)
            self._spatial_index(conn, staging)
            # The swap: readers wait for the commit and then see the new table.
            conn.execute(pgsql.SQL("DROP TABLE IF EXISTS {}").format(pgsql.Identifier(name)))
            conn.execute(
                pgsql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    pgsql.Identifier(staging), pgsql.Identifier(name)
                )
            )
            for suffix in (f"_{id_field}_idx", f"_{postgis.GEOMETRY_COLUMN}_idx"):
                conn.execute(
                    pgsql.SQL("ALTER INDEX {} RENAME TO {}").format(
                        pgsql.Identifier(staging + suffix), pgsql.Identifier(name + suffix)
                    )
                )
            sequence = conn.execute(
                "SELECT pg_get_serial_sequence(%s, %s)", [quote(name), postgis.PRIMARY_KEY]
            ).fetchone()[0]
            if sequence:
                conn.execute(
                    pgsql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
                        pgsql.SQL(sequence),
                        pgsql.Identifier(f"{name}_{postgis.PRIMARY_KEY}_seq"),
                    )
                )
            return written

        return self._write(operation)

    def append_features(
        self,
        name: str,
        features: Iterable[dict],
        *,
        fields: dict[str, str],
        geometry_type: str,
        srid: int = 25832,
        id_field: str = "id",
    ) -> int:
        prepared = _Prepared(name, features, fields, geometry_type, id_field)

        def operation(conn: psycopg.Connection) -> int:
            self._lock(conn, name)
            if not self._exists(conn, name):
                self._create(conn, name, prepared, srid)
                self._spatial_index(conn, name)
            else:
                existing = self._columns(conn, name)
                _check_compatible(name, existing, prepared.columns)
                for column in prepared.columns:
                    if column.name not in existing:
                        column_type = postgis.SQL_TYPES[column.kind]
                        conn.execute(
                            pgsql.SQL("ALTER TABLE {} ADD COLUMN {} " + column_type).format(
                                pgsql.Identifier(name), pgsql.Identifier(column.name)
                            )
                        )
            return postgis.copy_rows(conn, name, prepared.columns, prepared.records, srid)

        return self._write(operation)

    @staticmethod
    def _columns(conn: psycopg.Connection, name: str) -> dict[str, Column]:
        rows = conn.execute(
            "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            [quote(name)],
        ).fetchall()
        return {n: Column(n, postgis.KINDS.get(t, t)) for n, t in rows}

    def delete_features(self, name: str, where: dict[str, Any]) -> int:
        def operation(conn: psycopg.Connection) -> int:
            if not self._exists(conn, name):
                return 0
            columns = self._columns(conn, name)
            clauses, params = _where(name, columns, where, "%s")
            values = [postgis.db_value(columns[k].kind, v) for k, v in params]
            return conn.execute(f"DELETE FROM {quote(name)}{clauses}", values).rowcount

        return self._write(operation)

    def collections(self) -> list[str]:
        with self._connect(autocommit=True) as conn:
            return postgis.collections(conn)

    def count(self, name: str) -> int:
        with self._connect(autocommit=True) as conn:
            if not self._exists(conn, name):
                known = postgis.collections(conn)
                raise ValueError(
                    f"collection {name!r} is not in {postgis.safe_url(self.url)}; "
                    f"collections: {', '.join(known)}"
                )
            return conn.execute(f"SELECT COUNT(*) FROM {quote(name)}").fetchone()[0]


# --- the demo district ----------------------------------------------------------------------------


def demo_layers(demo_dir: str | Path) -> list[str]:
    """The served layers of the demo district: its GeoPackage's features tables, without the
    hidden truth the manifest lists."""
    demo_dir = Path(demo_dir)
    hidden: set[str] = set()
    manifest = demo_dir / "demo.json"
    if manifest.is_file():
        for entry in json.loads(manifest.read_text(encoding="utf-8")).get("hidden_truth", []):
            if "#" in str(entry):
                hidden.add(str(entry).split("#", 1)[1])
    connection = sqlite3.connect(
        f"{(demo_dir / 'district.gpkg').resolve().as_uri()}?mode=ro", uri=True
    )
    try:
        tables = gpkg_write.features_tables(connection)
    finally:
        connection.close()
    return [t for t in tables if t not in hidden]


def load_demo_into(store_location: str | Path, demo_dir: str | Path) -> dict[str, int]:
    """Copy the demo district's served layers into a store; returns {layer: features written}.

    Each layer replaces the collection of the same name (atomically), keeping its fields,
    geometry type, SRID, id field ``id`` and feature order.
    """
    source = Path(demo_dir) / "district.gpkg"
    store = open_store(store_location)
    if isinstance(store, GeoPackageStore) and store.path.resolve() == source.resolve():
        return {layer: store.count(layer) for layer in demo_layers(demo_dir)}
    written = {}
    for layer in demo_layers(demo_dir):
        backend = GeoPackageBackend(source, layer)
        table = backend.table
        names = table.column_names
        columns = ", ".join(quote(n) for n in [table.geometry_column, *names])
        rows = backend.fetch(
            f"SELECT {columns} FROM {quote(table.name)} ORDER BY {quote(table.primary_key)}", []
        )
        geometries = backend.geometries([row[0] for row in rows])
        converters = [backend.output_converter(c) for c in table.columns]
        features = [
            {
                "geometry": geometry,
                "properties": {
                    name: value if convert is None else convert(value)
                    for name, value, convert in zip(names, row[1:], converters, strict=True)
                    if value is not None
                },
            }
            for geometry, row in zip(geometries, rows, strict=True)
        ]
        written[layer] = store.replace_collection(
            layer,
            features,
            fields={c.name: c.kind for c in table.columns},
            geometry_type=table.geometry_type,
            srid=table.srid or 0,
            id_field="id",
        )
    return written
