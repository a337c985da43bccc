"""CQL2 AST (:mod:`cut_processes.providers.cql2`) to an SQL WHERE clause with parameters.

The translation walks the AST itself: identifiers come only from the table's known columns
(an unknown property is refused by name), every literal becomes a bound parameter cast to the
type of the column it is compared with, and what differs between SQLite and PostgreSQL is
rendered by a :class:`~cut_processes.providers.dialects.Dialect`. Nothing is evaluated in
Python except the exact geometry tests of the GeoPackage store, which run inside SQLite as a
registered function on the rows the R-tree pre-selects.

Supported (the conformance classes in :data:`CONFORMANCE` follow from this list):

- comparisons = <> < <= > >= between a property and a literal, or two properties of
  comparable types; NOT, AND, OR; IS [NOT] NULL (also on the geometry);
- LIKE / NOT LIKE (case-sensitive; % _ and \\ escapes), BETWEEN, IN / NOT IN;
- CASEI() and ACCENTI() on properties and literals, also inside LIKE;
- + - * / on numbers (division is real division; by zero gives NULL);
- dates, timestamps (DATE(), TIMESTAMP(), or text) compared with date and date-time properties;
- S_INTERSECTS, S_DISJOINT, S_CONTAINS, S_WITHIN, S_TOUCHES, S_CROSSES, S_OVERLAPS, S_EQUALS
  between the geometry and any geometry literal (BBOX, POINT ... GEOMETRYCOLLECTION), in
  either order; S_DWITHIN(geometry, literal, distance) with the distance in storage CRS units;
- T_BEFORE, T_AFTER, T_EQUALS, T_INTERSECTS, T_DISJOINT, T_DURING of a date or date-time
  property and an instant or interval (open ends '..').

Filter geometries are taken in the CRS they name (pygeoapi tags them with the storage CRS after
transforming them from ``filter-crs``), otherwise in CRS84, and transformed into the storage CRS.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyproj
import shapely
from pygeoapi.crs import get_crs
from pygeofilter import ast, values
from shapely.geometry import shape

from cut_processes.providers import cql2
from cut_processes.providers.cql2 import FilterError
from cut_processes.providers.dialects import Dialect, like_tokens
from cut_processes.providers.tables import Column, ValueTypeError, cast_query_value

CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
FEATURES_3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
CONFORMANCE = (
    f"{FEATURES_3}/filter",
    f"{FEATURES_3}/features-filter",
    f"{FEATURES_3}/queryables",
    f"{FEATURES_3}/queryables-query-parameters",
    f"{CQL2}/cql2-text",
    f"{CQL2}/cql2-json",
    f"{CQL2}/basic-cql2",
    f"{CQL2}/advanced-comparison-operators",
    f"{CQL2}/case-insensitive-comparison",
    f"{CQL2}/accent-insensitive-comparison",
    f"{CQL2}/basic-spatial-functions",
    f"{CQL2}/basic-spatial-functions-plus",
    f"{CQL2}/spatial-functions",
    f"{CQL2}/property-property",
)

DEFAULT_FILTER_CRS = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOMETRY_NAME = "geometry"
NUMERIC = ("integer", "number")

_MIRRORED = {
    ast.Equal: ast.Equal,
    ast.NotEqual: ast.NotEqual,
    ast.LessThan: ast.GreaterThan,
    ast.LessEqual: ast.GreaterEqual,
    ast.GreaterThan: ast.LessThan,
    ast.GreaterEqual: ast.LessEqual,
}
_SQL_OPERATORS = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL = {
    ast.GeometryIntersects: "intersects",
    ast.GeometryDisjoint: "disjoint",
    ast.GeometryContains: "contains",
    ast.GeometryWithin: "within",
    ast.GeometryTouches: "touches",
    ast.GeometryCrosses: "crosses",
    ast.GeometryOverlaps: "overlaps",
    ast.GeometryEquals: "equals",
}
# The predicate seen from the other side: S_WITHIN(literal, geometry) = geometry contains it.
_SPATIAL_MIRRORED = {"within": "contains", "contains": "within"}


@dataclass
class Sql:
    """An SQL expression with its parameters and its type (a field kind, or 'geometry')."""

    text: str
    params: list = field(default_factory=list)
    kind: str = "boolean"
    label: str = ""  # how to name it in messages


@dataclass
class Literal:
    value: Any


@functools.lru_cache(maxsize=32)
def _transformer(source: str, target_wkt: str) -> pyproj.Transformer:
    # Axis order as the CRS defines it (CRS84: longitude, latitude), as pygeoapi transforms.
    return pyproj.Transformer.from_crs(get_crs(source), pyproj.CRS.from_wkt(target_wkt))


class FilterTranslator:
    """Translate one filter for one table.

    :param dialect: the store's SQL dialect (knows the table)
    :param columns: the properties that may be filtered, by name
    :param storage_crs: the table's CRS (pyproj)
    :param geometry_names: names that refer to the geometry ('geometry' and the column name)
    """

    def __init__(
        self,
        dialect: Dialect,
        columns: dict[str, Column],
        storage_crs: pyproj.CRS,
        geometry_names: tuple[str, ...] = (GEOMETRY_NAME,),
    ):
        self.dialect = dialect
        self.columns = columns
        self.storage_crs = storage_crs
        self.geometry_names = geometry_names
        self.ph = dialect.placeholder
        self._negated = False  # inside an odd number of NOTs

    def translate(self, node: Any) -> tuple[str, list]:
        """(SQL condition, parameters) of a filter AST; FilterError names what is wrong."""
        result = self._condition(node)
        return result.text, result.params

    # --- conditions ---------------------------------------------------------------------

    def _condition(self, node: Any) -> Sql:
        if isinstance(node, ast.And | ast.Or):
            lhs, rhs = self._condition(node.lhs), self._condition(node.rhs)
            op = "AND" if isinstance(node, ast.And) else "OR"
            return Sql(f"({lhs.text} {op} {rhs.text})", lhs.params + rhs.params)
        if isinstance(node, ast.Not):
            self._negated = not self._negated
            try:
                inner = self._condition(node.sub_node)
            finally:
                self._negated = not self._negated
            return Sql(f"(NOT {inner.text})", inner.params)
        if isinstance(node, ast.Include):
            return Sql("(1 = 0)" if node.not_ else "(1 = 1)")
        if type(node) in _SQL_OPERATORS:
            return self._comparison(node)
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.Between):
            return self._between(node)
        if isinstance(node, ast.In):
            return self._in(node)
        if isinstance(node, ast.IsNull):
            return self._is_null(node)
        if type(node) in _SPATIAL:
            return self._spatial(_SPATIAL[type(node)], node.lhs, node.rhs)
        if isinstance(node, ast.DistanceWithin):
            return self._spatial("dwithin", node.lhs, node.rhs, node.distance)
        if isinstance(node, cql2.Temporal):
            return self._temporal(node)
        if isinstance(node, ast.Node):
            name = type(node).__name__
            raise FilterError(f"{name} is not supported in filters of this collection")
        raise FilterError(f"{node!r} is not a condition (a filter must be true or false)")

    def _comparison(self, node: ast.Comparison) -> Sql:
        kind = type(node)
        lhs, rhs = self._operand(node.lhs), self._operand(node.rhs)
        if isinstance(lhs, Literal) and isinstance(rhs, Sql):
            lhs, rhs, kind = rhs, lhs, _MIRRORED[kind]
        operator = _SQL_OPERATORS[kind]
        if isinstance(lhs, Sql):
            self._not_geometry(lhs, operator)
            right = self._against(lhs, rhs)
            sql = f"{lhs.text} {operator} {right.text}"
            return Sql(sql, lhs.params + right.params)
        # Two literals: compared by the database as they are.
        left, right = self._bare_literal(lhs.value), self._bare_literal(rhs.value)
        return Sql(f"{left.text} {operator} {right.text}", left.params + right.params)

    def _like(self, node: ast.Like) -> Sql:
        lhs = self._operand(node.lhs)
        if not isinstance(lhs, Sql) or lhs.kind != "string":
            what = lhs.label if isinstance(lhs, Sql) else repr(lhs.value)
            raise FilterError(f"LIKE needs a string property on the left, got {what}")
        pattern = self._pattern(node.pattern)
        sql = self.dialect.like(lhs.text, pattern.text, bool(node.not_))
        return Sql(sql, lhs.params + pattern.params)

    def _pattern(self, node: Any) -> Sql:
        """A LIKE pattern: a string literal, possibly inside CASEI()/ACCENTI()."""
        if isinstance(node, str):
            return Sql(self.ph, [self.dialect.like_pattern(like_tokens(node))], "string")
        if isinstance(node, ast.Function) and node.name in ("casei", "lower", "accenti"):
            if len(node.arguments) != 1:
                raise FilterError(f"{node.name.upper()}() takes one argument")
            return self._fold(node.name, self._pattern(node.arguments[0]))
        raise FilterError("the pattern of LIKE must be a string literal")

    def _between(self, node: ast.Between) -> Sql:
        lhs = self._operand(node.lhs)
        if not isinstance(lhs, Sql):
            raise FilterError("BETWEEN needs a property on the left")
        self._not_geometry(lhs, "BETWEEN")
        low, high = (
            self._against(lhs, self._operand(node.low)),
            self._against(lhs, self._operand(node.high)),
        )
        negate = "NOT " if node.not_ else ""
        sql = f"{lhs.text} {negate}BETWEEN {low.text} AND {high.text}"
        return Sql(sql, lhs.params + low.params + high.params)

    def _in(self, node: ast.In) -> Sql:
        lhs = self._operand(node.lhs)
        if not isinstance(lhs, Sql):
            raise FilterError("IN needs a property on the left")
        self._not_geometry(lhs, "IN")
        if not node.sub_nodes:
            return Sql("(1 = 1)" if node.not_ else "(1 = 0)")
        options = [self._against(lhs, self._operand(option)) for option in node.sub_nodes]
        negate = "NOT " if node.not_ else ""
        sql = f"{lhs.text} {negate}IN ({', '.join(o.text for o in options)})"
        return Sql(sql, lhs.params + [p for o in options for p in o.params])

    def _is_null(self, node: ast.IsNull) -> Sql:
        operand = self._operand(node.lhs)
        if not isinstance(operand, Sql):
            raise FilterError("IS NULL needs a property")
        if operand.kind == "geometry":
            sql = self.dialect.geometry_is_null()
            return Sql(f"(NOT {sql})" if node.not_ else sql)
        return Sql(f"{operand.text} IS {'NOT ' if node.not_ else ''}NULL", operand.params)

    # --- spatial ------------------------------------------------------------------------

    def _spatial(self, predicate: str, lhs: Any, rhs: Any, distance: float | None = None) -> Sql:
        name = predicate.upper()
        if self._is_geometry_ref(rhs) and not self._is_geometry_ref(lhs):
            lhs, rhs = rhs, lhs
            predicate = _SPATIAL_MIRRORED.get(predicate, predicate)
        if not self._is_geometry_ref(lhs):
            raise FilterError(
                f"S_{name} needs the geometry ('{GEOMETRY_NAME}') as one argument and a "
                "geometry literal as the other"
            )
        if not isinstance(rhs, values.Geometry):
            raise FilterError(f"S_{name} compares the geometry with a geometry literal only")
        if distance is not None and (distance < 0 or distance != distance):
            raise FilterError(f"S_DWITHIN distance must be >= 0, got {distance}")
        literal = self._geometry_literal(rhs)
        sql, params = self.dialect.spatial(predicate, literal, distance, self._negated)
        return Sql(sql, params)

    def _is_geometry_ref(self, node: Any) -> bool:
        return isinstance(node, ast.Attribute) and node.name in self.geometry_names

    def _geometry_literal(self, value: values.Geometry) -> shapely.Geometry:
        geojson = dict(value.geometry)
        crs_name = (geojson.pop("crs", None) or {}).get("properties", {}).get("name")
        try:
            geometry = shape(geojson)
        except Exception as err:  # shapely raises several kinds for broken GeoJSON
            raise FilterError(f"geometry literal {geojson.get('type')} is invalid: {err}") from err
        if geometry.is_empty:
            raise FilterError("geometry literal is empty")
        source = crs_name or DEFAULT_FILTER_CRS
        try:
            same = get_crs(source) == self.storage_crs
        except Exception as err:  # pyproj's CRSError and pygeoapi's own errors
            raise FilterError(f"filter geometry CRS {source!r} is not known: {err}") from err
        if not same:
            transformer = _transformer(source, self.storage_crs.to_wkt())
            geometry = shapely.transform(
                geometry, transformer.transform, include_z=None, interleaved=False
            )
        if not shapely.is_valid(geometry) and geometry.geom_type in ("Polygon", "MultiPolygon"):
            geometry = shapely.make_valid(geometry)
        return geometry

    # --- temporal -----------------------------------------------------------------------

    def _temporal(self, node: cql2.Temporal) -> Sql:
        name = node.name.upper()
        lhs, rhs = self._operand(node.lhs), self._operand(node.rhs)
        if not isinstance(lhs, Sql) or lhs.kind not in ("date", "datetime"):
            raise FilterError(f"{name} needs a date or date-time property as first argument")
        value = rhs.value if isinstance(rhs, Literal) else None
        if isinstance(value, values.Interval):
            start = None if value.start is None else self._against(lhs, Literal(value.start))
            end = None if value.end is None else self._against(lhs, Literal(value.end))
            return self._instant_in_interval(node.name, lhs, start, end)
        if not isinstance(value, date):
            raise FilterError(f"{name} needs a DATE, TIMESTAMP or INTERVAL as second argument")
        instant = self._against(lhs, rhs)
        operators = {
            "t_before": "<",
            "t_after": ">",
            "t_equals": "=",
            "t_intersects": "=",
            "t_disjoint": "<>",
        }
        if node.name not in operators:
            raise FilterError(f"{name} of two instants is not supported; use T_BEFORE, "
                              "T_AFTER, T_EQUALS, T_INTERSECTS or T_DISJOINT")  # fmt: skip
        return Sql(f"{lhs.text} {operators[node.name]} {instant.text}", lhs.params + instant.params)

    def _instant_in_interval(self, name: str, lhs: Sql, start: Sql | None, end: Sql | None) -> Sql:
        def bound(operator: str, limit: Sql | None, open_value: str) -> Sql:
            if limit is None:
                return Sql(open_value)
            return Sql(f"{lhs.text} {operator} {limit.text}", lhs.params + limit.params)

        def both(a: Sql, b: Sql, op: str = "AND") -> Sql:
            return Sql(f"({a.text} {op} {b.text})", a.params + b.params)

        # An open end ('..') bounds nothing: the property must only be present.
        present = f"{lhs.text} IS NOT NULL"
        if name == "t_before":
            return bound("<", start, "(1 = 0)")
        if name == "t_after":
            return bound(">", end, "(1 = 0)")
        if name == "t_during":
            return both(bound(">", start, present), bound("<", end, present))
        if name == "t_intersects":
            return both(bound(">=", start, present), bound("<=", end, present))
        if name == "t_disjoint":
            return both(bound("<", start, "(1 = 0)"), bound(">", end, "(1 = 0)"), "OR")
        raise FilterError(
            f"{name.upper()} of an instant and an interval is not supported; use T_BEFORE, "
            "T_AFTER, T_DURING, T_INTERSECTS or T_DISJOINT"
        )

    # --- expressions --------------------------------------------------------------------

    def _operand(self, node: Any) -> Sql | Literal:
        """A property, function or arithmetic expression as Sql; a literal as Literal."""
        if isinstance(node, ast.Attribute):
            return self._property(node.name)
        if isinstance(node, ast.Function):
            return self._function(node)
        if isinstance(node, ast.Arithmetic):
            return self._arithmetic(node)
        if isinstance(node, bool | int | float | str | date | values.Interval | values.Geometry):
            return Literal(node)
        if isinstance(node, ast.Node):
            raise FilterError(f"{type(node).__name__} cannot be used as a value")
        raise FilterError(f"unexpected value {node!r} in filter")

    def _property(self, name: str) -> Sql:
        if name in self.geometry_names:
            return Sql(self.dialect.ref(name), [], "geometry", GEOMETRY_NAME)
        column = self.columns.get(name)
        if column is None:
            known = ", ".join([GEOMETRY_NAME, *self.columns])
            raise FilterError(f"unknown property {name!r} in filter; queryables: {known}")
        return Sql(self.dialect.value_ref(column.name, column.kind), [], column.kind, name)

    def _function(self, node: ast.Function) -> Sql:
        name = node.name.lower()
        if name not in ("casei", "lower", "accenti"):
            raise FilterError(
                f"unknown function {node.name!r} in filter; functions: CASEI, ACCENTI"
            )
        if len(node.arguments) != 1:
            raise FilterError(f"{name.upper()}() takes one argument, got {len(node.arguments)}")
        argument = self._operand(node.arguments[0])
        if isinstance(argument, Literal):
            if not isinstance(argument.value, str):
                raise FilterError(f"{name.upper()}() needs a string, got {argument.value!r}")
            argument = Sql(self.ph, [argument.value], "string", repr(argument.value))
        if argument.kind != "string":
            raise FilterError(f"{name.upper()}() needs a string, {argument.label} is not")
        return self._fold(name, argument)

    def _fold(self, name: str, argument: Sql) -> Sql:
        label = f"{name.upper()}({argument.label})"
        if name in ("casei", "lower"):
            return Sql(self.dialect.casei(argument.text), argument.params, "string", label)
        sql, params = self.dialect.accenti(argument.text)
        return Sql(sql, argument.params + params, "string", label)

    def _arithmetic(self, node: ast.Arithmetic) -> Sql:
        parts = []
        for operand in (node.lhs, node.rhs):
            value = self._operand(operand)
            if isinstance(value, Literal):
                number = value.value
                if isinstance(number, bool) or not isinstance(number, int | float):
                    raise FilterError(f"arithmetic needs numbers, got {number!r}")
                kind = "integer" if isinstance(number, int) else "number"
                value = Sql(self.ph, [number], kind, repr(number))
            elif value.kind not in NUMERIC:
                raise FilterError(f"arithmetic needs numbers, {value.label} is not a number")
            parts.append(value)
        lhs, rhs = parts
        op = node.op.value
        params = lhs.params + rhs.params
        label = f"({lhs.label} {op} {rhs.label})"
        if op == "/":
            return Sql(self.dialect.divide(lhs.text, rhs.text), params, "number", label)
        kind = "integer" if lhs.kind == rhs.kind == "integer" else "number"
        return Sql(f"({lhs.text} {op} {rhs.text})", params, kind, label)

    def _against(self, target: Sql, other: Sql | Literal) -> Sql:
        """``other`` as an expression comparable with ``target`` (literals cast to its type)."""
        if isinstance(other, Sql):
            if not _comparable(target.kind, other.kind):
                raise FilterError(
                    f"cannot compare {target.label} ({target.kind}) with {other.label} "
                    f"({other.kind})"
                )
            return other
        value = other.value
        if isinstance(value, values.Geometry | values.Interval):
            raise FilterError(f"{target.label} cannot be compared with a geometry or interval")
        column = Column(target.label, target.kind)
        try:
            cast = cast_query_value(column, value)
        except ValueTypeError as err:
            raise FilterError(str(err)) from err
        return Sql(self.ph, [self.dialect.param(target.kind, cast)], target.kind)

    def _bare_literal(self, value: Any) -> Sql:
        if isinstance(value, values.Geometry | values.Interval):
            raise FilterError("geometries and intervals can only be used in S_ and T_ functions")
        kind = (
            "datetime" if isinstance(value, datetime) else "date" if isinstance(value, date) else ""
        )
        return Sql(self.ph, [self.dialect.param(kind, value)])

    @staticmethod
    def _not_geometry(operand: Sql, operator: str) -> None:
        if operand.kind == "geometry":
            raise FilterError(f"the geometry cannot be used with {operator}; use S_ functions")
        if operand.kind == "json":
            raise FilterError(f"{operand.label} holds JSON values: only IS NULL can test it")


def _comparable(a: str, b: str) -> bool:
    if a in NUMERIC and b in NUMERIC:
        return True
    return a == b and a not in ("geometry", "json")
