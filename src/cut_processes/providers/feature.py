"""One pygeoapi feature provider, two stores: a GeoPackage file or a PostGIS database.

Configuration (a ``providers`` entry of a collection)::

    type: feature
    name: cut_processes.providers.FeatureProvider
    data: var/demo/district.gpkg        # the GeoPackage (used when store is empty)
    store: ${CUT_STORE:-}               # empty, or postgresql://user@host/db (PostGIS);
                                        # a postgresql:// URL in `data` works too
    table: buildings                    # the table, in either store
    id_field: id                        # optional, default the integer key (fid)
    time_field: observed_at             # optional, a date or date-time column
    properties: [a, b]                  # optional, the properties published (and filterable)
    storage_crs: http://www.opengis.net/def/crs/EPSG/0/25832   # the table's CRS
    editable: true                      # optional: transactions (OGC API - Features Part 4)
    required: [text]                    # optional: properties a written feature must have

Both stores give the same answers to the same request (``tests/api/test_features_matrix.py``):
``offset``/``limit`` paging ordered by the sort keys and then the integer key, ``numberMatched``
from a COUNT under the same WHERE, ``bbox`` (exact intersection, through the spatial index),
``datetime`` (instant or interval, open ends) on ``time_field``, property equality filters with
values cast to the column type, CQL2 ``filterq`` (an AST from pygeoapi, or CQL2 text or a
CQL2-JSON dict when called directly; see :mod:`~cut_processes.providers.filters`), ``sortby``
(nulls last in both directions, strings by code point), ``select_properties``,
``skip_geometry`` and output in any CRS through pygeoapi's ``crs_transform_spec`` (a page of
geometries is transformed in one call). ``q`` is refused with 400 rather than ignored.

Transactions (``editable: true``): ``create`` (POST), ``update`` (PUT, replaces the feature),
``patch`` (PATCH, JSON merge patch of properties, geometry replaced when given; pygeoapi 0.24
has no PATCH route, :mod:`~cut_processes.providers.http` adds it) and ``delete``. Bodies are
GeoJSON features in CRS84; they are checked against the table: unknown properties, values
not of the column's type, missing required properties (NOT NULL columns and ``required``)
and geometries of another type are refused with 400 naming them; an id that exists already
gives 409. The id is the body's ``id`` (or its id-field property), else a new UUID (text ids)
or the next number (integer ids); when the id is the integer key itself, the database assigns
it.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import uuid
from copy import deepcopy
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import psycopg
import shapely
from pygeoapi.crs import DEFAULT_STORAGE_CRS, get_crs
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from shapely.geometry import shape

from cut_processes.providers import cql2
from cut_processes.providers.dialects import quote
from cut_processes.providers.filters import DEFAULT_FILTER_CRS, FilterTranslator, _transformer
from cut_processes.providers.geojson_geometry import to_geojson_geometries, transform_geometries
from cut_processes.providers.geopackage import GeoPackageBackend
from cut_processes.providers.postgis import PostGISBackend, is_postgresql_url
from cut_processes.providers.tables import (
    Column,
    ValueTypeError,
    cast_query_value,
    record_value,
)

LOGGER = logging.getLogger(__name__)


class FeatureValidationError(ProviderGenericError):
    """A feature body that does not fit the collection (HTTP 400)."""

    ogc_exception_code = "InvalidParameterValue"
    http_status_code = HTTPStatus.BAD_REQUEST
    default_msg = "invalid feature"


class FeatureConflictError(ProviderGenericError):
    """A feature whose id exists already (HTTP 409)."""

    ogc_exception_code = "Conflict"
    http_status_code = HTTPStatus.CONFLICT
    default_msg = "feature exists already"


def invalid(message: str) -> ProviderInvalidQueryError:
    return ProviderInvalidQueryError(user_msg=message)


class FeatureProvider(BaseProvider):
    """pygeoapi feature provider for one table of a GeoPackage or a PostGIS database."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        table_name = provider_def.get("table")
        if not table_name:
            raise ProviderConnectionError(f"feature provider of {self.data}: no 'table' set")
        # The store: a postgresql:// URL in `store` (or in `data`), else the GeoPackage `data`.
        store = str(provider_def.get("store") or "").strip()
        if not store and is_postgresql_url(str(self.data)):
            store = str(self.data)
        if is_postgresql_url(store):
            self.backend: GeoPackageBackend | PostGISBackend = PostGISBackend(store, table_name)
        else:
            self.backend = GeoPackageBackend(Path(self.data), table_name)
        self.table = self.backend.table
        self.dialect = self.backend.dialect
        self.required = list(provider_def.get("required") or [])
        table = self.table

        if self.id_field is None:
            self.id_field = table.primary_key
        elif self.id_field != table.primary_key and table.column(self.id_field) is None:
            raise ProviderConnectionError(
                f"id_field {self.id_field!r} is not a column of table {table.name!r} in "
                f"{table.location}; columns: {', '.join(table.column_names)}"
            )
        if self.time_field is not None:
            column = table.column(self.time_field)
            if column is None or column.kind not in ("date", "datetime"):
                raise ProviderConnectionError(
                    f"time_field {self.time_field!r} must be a date or date-time column of "
                    f"table {table.name!r} in {table.location}"
                )
        self._check_storage_crs(provider_def)
        # Filters may name the geometry 'geometry' (CQL2's convention) or by its column.
        names = ["geometry", table.geometry_column, provider_def.get("geom_field")]
        self.geometry_names = tuple(n for n in dict.fromkeys(names) if n)
        self.get_fields()

    def _check_storage_crs(self, provider_def: dict) -> None:
        """Refuse a storage_crs that contradicts the EPSG code the store declares."""
        srid = self.table.srid
        if srid is None:
            return
        configured = provider_def.get("storage_crs", DEFAULT_STORAGE_CRS)
        storage_epsg, geographic = _epsg_code(configured)
        if storage_epsg == srid:
            return
        # GeoPackage and PostGIS store x=longitude, y=latitude, which is CRS84.
        if storage_epsg is None and srid == 4326 and geographic:
            return
        raise ProviderConnectionError(
            f"storage_crs {configured} does not match EPSG:{srid} of table "
            f"{self.table.name!r} in {self.table.location}; set storage_crs: "
            f"http://www.opengis.net/def/crs/EPSG/0/{srid}"
        )

    def get_fields(self) -> dict:
        """Attribute columns as ``{name: {'type': ..., 'format': ...}}`` (no geometry).

        Types: string (date with format date, date-time with format date-time), integer,
        number, boolean, object (JSON). The integer key is included only when it is the id.
        """
        if not self._fields:
            fields = {}
            if self.id_field == self.table.primary_key:
                fields[self.table.primary_key] = {"type": "integer"}
            for column in self.table.columns:
                fields[column.name] = column.schema()
            # pygeoapi edits these dicts in place (schema endpoint): never hand out shared ones.
            self._fields = deepcopy(fields)
        return self._fields

    # --- reading -----------------------------------------------------------------------------

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
        :param filterq: CQL2 filter: a pygeofilter AST, CQL2 text or a CQL2-JSON dict
        :param crs_transform_spec: pygeoapi CrsTransformSpec for the output CRS, or None
        """
        if q:
            raise invalid("q (free-text search) is not supported")
        if resulttype not in ("results", "hits"):
            raise invalid(f"resulttype must be 'results' or 'hits', got {resulttype!r}")
        offset, limit = _non_negative_int("offset", offset), _non_negative_int("limit", limit)

        parts = SelectParts()
        self._add_bbox(parts, bbox or [])
        self._add_datetime(parts, datetime_)
        self._add_property_filters(parts, properties or [])
        self._add_filter(parts, filterq)
        self._add_sortby(parts, sortby or [])
        names = self._output_properties(select_properties or [])

        collection: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        table = quote(self.table.name)
        if self.count or resulttype == "hits":
            sql = f"SELECT COUNT(*) FROM {table}{parts.where_sql()}"
            collection["numberMatched"] = self.backend.fetch(sql, parts.params)[0][0]
        if resulttype == "hits":
            collection["numberReturned"] = 0
            return collection

        ph = self.dialect.placeholder
        sql = f"SELECT {self._select_list(names, skip_geometry)} FROM {table}{parts.where_sql()}"
        sql += f"{parts.order_sql()} LIMIT {ph} OFFSET {ph}"
        rows = self.backend.fetch(sql, [*parts.params, limit, offset])
        collection["features"] = self._features(rows, names, skip_geometry, crs_transform_spec)
        collection["numberReturned"] = len(rows)
        return collection

    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> dict:
        """The feature whose id field equals ``identifier``; ProviderItemNotFoundError if none."""
        value = self._id_value(identifier)
        if value is not None:
            ph = self.dialect.placeholder
            names = self._output_properties([])
            sql = (
                f"SELECT {self._select_list(names, False)} FROM {quote(self.table.name)} "
                f"WHERE {quote(self.id_field)} = {ph} ORDER BY {quote(self.table.primary_key)} "
                f"LIMIT 1"
            )
            rows = self.backend.fetch(sql, [value])
            if rows:
                return self._features(rows, names, False, crs_transform_spec)[0]
        raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found")

    # --- query parts -------------------------------------------------------------------------

    def _add_bbox(self, parts: SelectParts, bbox: list) -> None:
        if not bbox:
            return
        if len(bbox) not in (4, 6):
            raise invalid(f"bbox must have 4 or 6 numbers, got {len(bbox)}")
        try:
            numbers = [float(v) for v in bbox]
        except (TypeError, ValueError) as err:
            raise invalid(f"bbox must be numbers: {bbox}") from err
        if len(numbers) == 6:  # minx, miny, minz, maxx, maxy, maxz
            numbers = [numbers[i] for i in (0, 1, 3, 4)]
        parts.add(*self.dialect.bbox(*numbers))

    def _add_datetime(self, parts: SelectParts, datetime_: str | None) -> None:
        if datetime_ is None or datetime_ == "":
            return
        if self.time_field is None:
            raise invalid("datetime is not supported: this collection has no time field")
        column = self.table.column(self.time_field)
        ref = self.dialect.value_ref(column.name, column.kind)
        ph = self.dialect.placeholder
        text = str(datetime_).strip()
        if "/" in text:
            begin_text, end_text = (part.strip() for part in text.split("/", 1))
            begin, end = _parse_time(begin_text), _parse_time(end_text)
        else:
            begin = end = _parse_time(text)
            if begin is None:
                return
        if begin is None and end is None:  # '../..': any feature that has a time
            parts.add(f"{ref} IS NOT NULL")

        def bound(moment: datetime, date_only: bool) -> Any:
            value = moment.date() if column.kind == "date" else moment
            return self.dialect.param(column.kind, value)

        if begin is not None:
            parts.add(f"{ref} >= {ph}", [bound(*begin)])
        if end is not None:
            moment, date_only = end
            if date_only and column.kind == "datetime":
                # A date as end (or instant) on a date-time column: up to the end of that day.
                parts.add(f"{ref} < {ph}", [bound(moment + timedelta(days=1), False)])
            else:
                parts.add(f"{ref} <= {ph}", [bound(moment, date_only)])

    def _add_property_filters(self, parts: SelectParts, properties: list) -> None:
        for name, value in properties:
            column = self._known_column(name, "property filter")
            try:
                cast = cast_query_value(column, value)
            except ValueTypeError as err:
                raise invalid(str(err)) from err
            ref = self.dialect.value_ref(column.name, column.kind)
            parts.add(
                f"{ref} = {self.dialect.placeholder}", [self.dialect.param(column.kind, cast)]
            )

    def _add_filter(self, parts: SelectParts, filterq: Any) -> None:
        if filterq is None:
            return
        try:
            tree = cql2.parse_filter(filterq)
            translator = FilterTranslator(
                self.dialect, self._filter_columns(), self.storage_crs, self.geometry_names
            )
            sql, params = translator.translate(tree)
        except cql2.FilterError as err:
            raise invalid(str(err)) from err
        parts.add(sql, params)

    def _filter_columns(self) -> dict[str, Column]:
        columns = {name: self._column(name) for name in self.fields}
        if self.properties:
            published = set(self.properties) | {self.id_field}
            columns = {k: v for k, v in columns.items() if k in published}
        return columns

    def _add_sortby(self, parts: SelectParts, sortby: list) -> None:
        for sort in sortby:
            name = sort.get("property")
            order = sort.get("order", "+")
            if order not in ("+", "-"):
                raise invalid(f"sortby order of {name!r} must be '+' or '-', got {order!r}")
            column = self._known_column(name, "sortby")
            if column.kind == "json":
                raise invalid(f"property {name!r} holds JSON values and cannot be sorted")
            direction = "DESC" if order == "-" else "ASC"
            ref = self.dialect.value_ref(column.name, column.kind)
            parts.order_by.append(f"{ref} {direction} NULLS LAST")
        # The integer key last, so that pages are stable.
        parts.order_by.append(quote(self.table.primary_key))

    def _column(self, name: str) -> Column | None:
        """The column of a field name; the integer key counts when it is the id."""
        if name == self.id_field == self.table.primary_key:
            return Column(name, "integer", nullable=False)
        return self.table.column(name)

    def _known_column(self, name: str, usage: str) -> Column:
        column = self._column(name)
        if column is None:
            known = ", ".join(self.fields)
            raise invalid(f"unknown property {name!r} in {usage}; properties: {known}")
        return column

    def _output_properties(self, select_properties: list) -> list[str]:
        """Names of the properties to return, in table order unless selected explicitly."""
        available = list(self.fields)
        for name in select_properties:
            if name not in available:
                raise invalid(
                    f"unknown property {name!r} in properties; properties: {', '.join(available)}"
                )
        names = list(dict.fromkeys(select_properties)) if select_properties else available
        if self.properties:
            names = [name for name in names if name in self.properties]
        return names

    def _select_list(self, names: list[str], skip_geometry: bool) -> str:
        """id field, geometry (unless skipped), then the properties."""
        columns = [quote(self.id_field)]
        if not skip_geometry:
            columns.append(self.dialect.geometry_select())
        return ", ".join(columns + [quote(n) for n in names])

    def _id_value(self, identifier: Any) -> Any:
        """The identifier cast to the id column's type, or None when it cannot match."""
        try:
            return cast_query_value(self._column(self.id_field), identifier)
        except ValueTypeError:
            return None

    # --- features ----------------------------------------------------------------------------

    def _features(
        self, rows: list, names: list[str], skip_geometry: bool, crs_transform_spec: Any
    ) -> list[dict]:
        first_property = 1 if skip_geometry else 2
        if skip_geometry:
            geometries: list = [None] * len(rows)
        else:
            shapes = self.backend.geometries([row[1] for row in rows])
            geometries = to_geojson_geometries(transform_geometries(shapes, crs_transform_spec))
        converters = []
        for index, name in enumerate(names):
            convert = self.backend.output_converter(self._column(name))
            if convert is not None:
                converters.append((index, name, convert))
        features = []
        for row, geometry in zip(rows, geometries, strict=True):
            row_values = row[first_property:]
            properties = dict(zip(names, row_values, strict=True))
            for index, name, convert in converters:
                if row_values[index] is not None:
                    properties[name] = convert(row_values[index])
            features.append(
                {"type": "Feature", "id": row[0], "geometry": geometry, "properties": properties}
            )
        return features

    # --- transactions ------------------------------------------------------------------------

    def create(self, item: Any) -> Any:
        """Insert a GeoJSON feature (CRS84); returns its identifier."""
        feature = _feature_body(item)
        identifier = self._body_identifier(feature)
        geometry, values = self._record(feature, partial=False)
        key_is_id = self.id_field == self.table.primary_key
        if key_is_id and identifier is not None:
            raise FeatureValidationError(
                user_msg=f"ids of this collection ({self.id_field}) are assigned by the server"
            )
        if not key_is_id:
            identifier = self._new_identifier() if identifier is None else identifier
            values[self.id_field] = self._checked_id(identifier)
        try:
            key = self.backend.insert(geometry, values)
        except (psycopg.errors.UniqueViolation, sqlite3.IntegrityError) as err:
            raise FeatureConflictError(user_msg=f"feature {identifier!r} exists already") from err
        return key if key_is_id else identifier

    def update(self, identifier: Any, item: Any) -> bool:
        """Replace the feature ``identifier`` with a GeoJSON feature (PUT)."""
        feature = _feature_body(item)
        body_id = self._body_identifier(feature)
        if body_id is not None and str(body_id) != str(identifier):
            raise FeatureValidationError(
                user_msg=f"the body's id {body_id!r} differs from the item's id {identifier!r}"
            )
        geometry, values = self._record(feature, partial=False)
        # Absent properties become null: PUT replaces the whole feature.
        for column in self.table.columns:
            if column.name not in values and column.name != self.id_field:
                values[column.name] = None
        return self._write_update(identifier, geometry, values, set_geometry=True)

    def patch(self, identifier: Any, item: Any) -> bool:
        """Merge a partial feature into ``identifier`` (PATCH, RFC 7396 on the properties)."""
        feature = _feature_body(item, partial=True)
        body_id = self._body_identifier(feature)
        if body_id is not None and str(body_id) != str(identifier):
            raise FeatureValidationError(
                user_msg=f"the body's id {body_id!r} differs from the item's id {identifier!r}"
            )
        geometry, values = self._record(feature, partial=True)
        return self._write_update(identifier, geometry, values, set_geometry="geometry" in feature)

    def delete(self, identifier: Any) -> bool:
        key = self._id_value(identifier)
        if key is None or not self.backend.delete(self.id_field, key):
            raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found")
        return True

    def _write_update(
        self, identifier: Any, geometry: Any, values: dict, set_geometry: bool
    ) -> bool:
        key = self._id_value(identifier)
        values.pop(self.id_field, None)
        if key is None or not self.backend.update(
            self.id_field, key, geometry, values, set_geometry
        ):
            raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found")
        return True

    def _body_identifier(self, feature: dict) -> Any:
        properties = feature.get("properties") or {}
        top, inner = feature.get("id"), properties.get(self.id_field)
        if top is not None and inner is not None and str(top) != str(inner):
            raise FeatureValidationError(
                user_msg=f"the feature's id {top!r} differs from its property "
                f"{self.id_field!r} {inner!r}"
            )
        return top if top is not None else inner

    def _checked_id(self, identifier: Any) -> Any:
        column = self._column(self.id_field)
        try:
            value = cast_query_value(column, identifier)
        except ValueTypeError as err:
            raise FeatureValidationError(user_msg=f"id: {err}") from err
        if isinstance(value, str) and not value.strip():
            raise FeatureValidationError(user_msg="id must not be empty")
        return value

    def _new_identifier(self) -> Any:
        column = self._column(self.id_field)
        if column.kind == "integer":
            sql = (
                f"SELECT COALESCE(MAX({quote(self.id_field)}), 0) + 1 FROM {quote(self.table.name)}"
            )
            return self.backend.fetch(sql, [])[0][0]
        return uuid.uuid4().hex

    def _record(self, feature: dict, partial: bool) -> tuple[Any, dict]:
        """(geometry in the storage CRS, {column: checked value}) of a feature body."""
        properties = feature.get("properties")
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            raise FeatureValidationError(user_msg="properties must be a JSON object")
        writable = {c.name: c for c in self.table.columns}
        values = {}
        for name, value in properties.items():
            if name == self.id_field:
                continue
            column = writable.get(name)
            if column is None or (self.properties and name not in self.properties):
                known = ", ".join(
                    n for n in writable if not self.properties or n in self.properties
                )
                raise FeatureValidationError(
                    user_msg=f"unknown property {name!r}; properties: {known}"
                )
            try:
                values[name] = record_value(column, value)
            except ValueTypeError as err:
                raise FeatureValidationError(user_msg=str(err)) from err
        required = {c.name for c in self.table.columns if not c.nullable} | set(self.required)
        required.discard(self.id_field)
        for name in sorted(required):
            if (not partial and values.get(name) is None) or (
                partial and name in values and values[name] is None
            ):
                raise FeatureValidationError(user_msg=f"property {name!r} is required")
        geometry = self._geometry(feature.get("geometry")) if "geometry" in feature else None
        if not partial and "geometry" not in feature:
            raise FeatureValidationError(user_msg="a feature needs a 'geometry' (may be null)")
        return geometry, values

    def _geometry(self, geojson: Any) -> shapely.Geometry | None:
        if geojson is None:
            return None
        try:
            geometry = shape(geojson)
        except Exception as err:  # shapely raises several kinds for broken GeoJSON
            raise FeatureValidationError(user_msg=f"geometry is not valid GeoJSON: {err}") from err
        expected = self.table.geometry_type
        if expected not in ("GEOMETRY", geometry.geom_type.upper()):
            raise FeatureValidationError(
                user_msg=f"geometry must be a {expected.title()}, got {geometry.geom_type}"
            )
        if geometry.is_empty:
            return None
        if get_crs(DEFAULT_FILTER_CRS) != self.storage_crs:
            transformer = _transformer(DEFAULT_FILTER_CRS, self.storage_crs.to_wkt())
            geometry = shapely.transform(
                geometry, transformer.transform, include_z=None, interleaved=False
            )
        return geometry

    def __repr__(self) -> str:
        return f"<FeatureProvider> {self.table.location} {self.table.name}"


def _feature_body(item: Any, partial: bool = False) -> dict:
    """The JSON object of a request body (bytes, text or dict)."""
    if isinstance(item, bytes | bytearray):
        try:
            item = item.decode("utf-8")
        except UnicodeDecodeError as err:
            raise FeatureValidationError(user_msg="the body is not UTF-8") from err
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except json.JSONDecodeError as err:
            raise FeatureValidationError(user_msg=f"the body is not JSON: {err}") from err
    if not isinstance(item, dict):
        raise FeatureValidationError(user_msg="the body must be a GeoJSON Feature object")
    if item.get("type", "Feature" if partial else None) != "Feature":
        raise FeatureValidationError(
            user_msg="the body must be a GeoJSON Feature ('type': 'Feature')"
        )
    return item


class SelectParts:
    """WHERE clauses (ANDed) with positional parameters, and ORDER BY terms."""

    def __init__(self) -> None:
        self.where: list[str] = []
        self.params: list[Any] = []
        self.order_by: list[str] = []

    def add(self, clause: str, params: list | None = None) -> None:
        self.where.append(clause)
        self.params.extend(params or [])

    def where_sql(self) -> str:
        if not self.where:
            return ""
        return " WHERE " + " AND ".join(f"({clause})" for clause in self.where)

    def order_sql(self) -> str:
        return " ORDER BY " + ", ".join(self.order_by) if self.order_by else ""


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
        raise invalid(f"{name} must be an integer, got {value!r}") from err
    if number < 0:
        raise invalid(f"{name} must be >= 0, got {number}")
    return number


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
        raise invalid(f"datetime {text!r} is not an RFC 3339 date or date-time") from err
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment, False


__all__ = ["FeatureConflictError", "FeatureProvider", "FeatureValidationError"]
