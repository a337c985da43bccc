"""CQL2 filters (OGC 21-065r2) in text and JSON encoding, parsed into pygeofilter's AST.

Why our own parsers: pygeofilter 0.4 (which pygeoapi 0.24 uses) lacks parts of CQL2 1.0 and
gets some wrong: AND and OR have the same precedence, temporal functions are infix, BBOX(...)
is not a literal, '' in strings is not a quote, S_DWITHIN does not parse, LIKE's single
character wildcard is '.', and CQL2-JSON BETWEEN expects the draft form. The AST produced here
uses pygeofilter's node classes wherever they fit (so pygeoapi's ``modify_pygeofilter`` still
transforms filter geometries from ``filter-crs`` into the storage CRS), plus :class:`Temporal`
for the T_ functions. ``providers.http`` makes pygeoapi use these parsers.

Node shapes produced (``lhs``/``rhs`` are expressions):

- ``ast.And``/``ast.Or``/``ast.Not``; comparisons ``ast.Equal``, ``NotEqual``, ``LessThan``,
  ``LessEqual``, ``GreaterThan``, ``GreaterEqual``;
- ``ast.Like(lhs, pattern, nocase=False, wildcard='%', singlechar='_', escapechar='\\', not_)``
  (CQL2 wildcards), ``ast.Between``, ``ast.In``, ``ast.IsNull``, ``ast.Include``;
- ``ast.GeometryIntersects`` ... ``ast.GeometryEquals``, ``ast.DistanceWithin(lhs, rhs,
  distance, units=None)``; :class:`Temporal` (name like ``t_before``);
- expressions: ``ast.Attribute``, ``ast.Function(name, arguments)`` (``casei``, ``accenti``,
  names lower-cased), ``ast.Add``/``Sub``/``Mul``/``Div``, literals ``str``, ``int``,
  ``float``, ``bool``, ``datetime.date``, ``datetime.datetime`` (timezone-aware, UTC when the
  text has no offset), ``values.Interval`` (``None`` for an open end ``'..'``) and
  ``values.Geometry`` (a GeoJSON dict; BBOX literals become Polygons).

Every problem raises :class:`FilterError` with a message that names it.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pygeofilter.parsers
from lark import Lark, Token, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_text.parser import CQLTransformer

CRS84_URN = "urn:ogc:def:crs:OGC::CRS84"


class FilterError(ValueError):
    """A filter that cannot be parsed or translated; the message names the problem."""


@dataclass
class Temporal(ast.Predicate):
    """A CQL2 temporal function ``name(lhs, rhs)``; ``name`` lower case, e.g. ``t_before``."""

    name: str
    lhs: Any
    rhs: Any

    def get_sub_nodes(self) -> list:
        return [self.lhs, self.rhs]

    def get_template(self) -> str:
        return f"{self.name.upper()}({{}}, {{}})"


SPATIAL_NODES: dict[str, type[ast.SpatialComparisonPredicate]] = {
    "s_intersects": ast.GeometryIntersects,
    "s_disjoint": ast.GeometryDisjoint,
    "s_contains": ast.GeometryContains,
    "s_within": ast.GeometryWithin,
    "s_touches": ast.GeometryTouches,
    "s_crosses": ast.GeometryCrosses,
    "s_overlaps": ast.GeometryOverlaps,
    "s_equals": ast.GeometryEquals,
}
COMPARISON_NODES: dict[str, type[ast.Comparison]] = {
    "=": ast.Equal,
    "<>": ast.NotEqual,
    "<": ast.LessThan,
    "<=": ast.LessEqual,
    ">": ast.GreaterThan,
    ">=": ast.GreaterEqual,
}
ARITHMETIC_NODES: dict[str, type[ast.Arithmetic]] = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mul,
    "/": ast.Div,
}
TEMPORAL_NAMES = frozenset(
    {
        "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals",
        "t_finishedby", "t_finishes", "t_intersects", "t_meets", "t_metby", "t_overlappedby",
        "t_overlaps", "t_startedby", "t_starts", "t_begins", "t_begunby", "t_ends", "t_endedby",
    }
)  # fmt: skip


def like(lhs: Any, pattern: Any, not_: bool = False) -> ast.Like:
    """A LIKE node with CQL2's wildcards: % any characters, _ one character, \\ escape."""
    return ast.Like(lhs, pattern, False, "%", "_", "\\", not_)


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 date-time as a timezone-aware datetime (UTC when no offset is given)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise FilterError(f"TIMESTAMP('{text}') is not an RFC 3339 date-time") from err
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_date(text: str) -> date:
    try:
        if len(text.strip()) != 10:
            raise ValueError(text)
        return date.fromisoformat(text.strip())
    except ValueError as err:
        raise FilterError(f"DATE('{text}') is not a date (YYYY-MM-DD)") from err


def _instant(text: str) -> date | datetime | None:
    """An interval end: '..' (open), a date or a date-time."""
    text = text.strip()
    if text in ("..", ""):
        return None
    return parse_date(text) if len(text) == 10 else parse_timestamp(text)


def bbox_geometry(numbers: list) -> values.Geometry:
    """A CQL2 BBOX literal (4 or 6 numbers) as a Polygon (z ignored)."""
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise FilterError(f"BBOX needs 4 or 6 numbers, got {len(numbers)}")
    try:
        minx, miny, maxx, maxy = (float(n) for n in numbers)
    except (TypeError, ValueError) as err:
        raise FilterError(f"BBOX needs numbers, got {numbers}") from err
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return values.Geometry({"type": "Polygon", "coordinates": [ring]})


# --- CQL2 text ----------------------------------------------------------------------------------


@v_args(meta=False, inline=True)
class _TextTransformer(CQLTransformer):
    """pygeofilter's transformer, adapted to the grammar in ``cql2_text.lark``."""

    def like(self, node, pattern):
        return like(node, pattern)

    def not_like(self, node, pattern):
        return like(node, pattern, not_=True)

    def spatial(self, name, lhs, rhs):
        return SPATIAL_NODES[str(name).lower()](lhs, rhs)

    def dwithin(self, lhs, rhs, distance):
        return ast.DistanceWithin(lhs, rhs, float(distance), None)

    def temporal(self, name, lhs, rhs):
        return Temporal(str(name).lower(), lhs, rhs)

    def function(self, name, *arguments):
        arguments = [a for a in arguments if a is not None]
        return ast.Function(str(name).lower(), arguments)

    def attribute(self, name):
        text = str(name)
        if text.startswith('"'):
            text = text[1:-1].replace('""', '"')
        return ast.Attribute(text)

    def string(self, token):
        return str(token)[1:-1].replace("''", "'")

    # Quoted tokens stay tokens: the rules unquote them.
    def SINGLE_QUOTED(self, token):
        return token

    def DOUBLE_QUOTED(self, token):
        return token

    # The keywords TIMESTAMP/DATE/INTERVAL are terminals of these names here, not ISO 8601 text.
    def DATE(self, token):
        return token

    def DATETIME(self, token):
        return token

    def timestamp(self, token):
        return parse_timestamp(self.string(token))

    def date(self, token):
        return parse_date(self.string(token))

    def interval(self, start, end):
        def end_value(value):
            return _instant(value) if isinstance(value, str) else value

        return values.Interval(end_value(start), end_value(end))

    def bbox(self, *numbers):
        return bbox_geometry(list(numbers))

    def geometry(self, value):
        return values.Geometry(_plain_geometry(value))

    def neg(self, value):
        if isinstance(value, int | float):
            return -value
        return ast.Sub(0, value)

    # pygeofilter's WKT transformer prints these; ours does not.
    def wkt__geometry_with_srid(self, srid, geometry):
        geometry["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
        return geometry

    def wkt__multipoint_2(self, *coordinates):
        return {"type": "MultiPoint", "coordinates": coordinates}


def _plain_geometry(geometry: dict) -> dict:
    """A GeoJSON dict with lists instead of the parser's tuples."""
    return json.loads(json.dumps(geometry))


@functools.cache
def _text_parser() -> Lark:
    return Lark.open(
        "cql2_text.lark",
        rel_to=__file__,
        parser="lalr",
        maybe_placeholders=False,
        transformer=_TextTransformer(),
        import_paths=[os.path.dirname(pygeofilter.parsers.__file__)],
    )


_READABLE_TERMINALS = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "EQUAL": "'='",
    "MORETHAN": "'>'",
    "LESSTHAN": "'<'",
    "NAME": "a property name",
    "DOUBLE_QUOTED": "a property name",
    "SINGLE_QUOTED": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "AND": "AND",
    "OR": "OR",
    "$END": "the end",
}


def _syntax_error(text: str, err: UnexpectedInput) -> FilterError:
    if isinstance(err, UnexpectedEOF):
        return FilterError(f"filter {text!r} ends unexpectedly")
    column = getattr(err, "column", None)
    if isinstance(err, UnexpectedToken):
        token = err.token
        if token.type == "$END":
            return FilterError(f"CQL2 syntax error in filter {text!r}: it ends too early")
        found = repr(str(token))
        expected = sorted(
            {_READABLE_TERMINALS[t] for t in err.expected if t in _READABLE_TERMINALS}
        )
        hint = f"; expected {', '.join(expected)}" if expected and len(expected) <= 6 else ""
        where = f" at column {column}" if column and column > 0 else ""
        return FilterError(f"CQL2 syntax error in filter {text!r}: unexpected {found}{where}{hint}")
    if isinstance(err, UnexpectedCharacters):
        return FilterError(
            f"CQL2 syntax error in filter {text!r}: unexpected character "
            f"{text[err.pos_in_stream]!r} at column {column}"
        )
    return FilterError(f"CQL2 syntax error in filter {text!r}: {err}")


@functools.lru_cache(maxsize=256)
def _parse_text_cached(text: str) -> Any:
    try:
        return _text_parser().parse(text)
    except VisitError as err:
        if isinstance(err.orig_exc, FilterError):
            raise err.orig_exc from None
        raise FilterError(f"filter {text!r}: {err.orig_exc}") from err
    except UnexpectedInput as err:
        raise _syntax_error(text, err) from None
    except FilterError:
        raise
    except (ValueError, TypeError) as err:
        raise FilterError(f"filter {text!r}: {err}") from err


def parse_text(text: str) -> Any:
    """Parse CQL2 text into an AST (a fresh copy: callers may modify it).

    Text starting with '{' is taken as CQL2-JSON: pygeoapi passes the ``filter`` query
    parameter to the text parser whatever ``filter-lang`` says.
    """
    if not isinstance(text, str):
        raise FilterError(f"filter must be text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise FilterError("filter is empty")
    if stripped.startswith("{"):
        return parse_json(stripped)
    return copy.deepcopy(_parse_text_cached(stripped))


# --- CQL2 JSON ----------------------------------------------------------------------------------


def parse_json(document: str | bytes | dict) -> Any:
    """Parse CQL2-JSON (a JSON text or an already decoded dict) into an AST."""
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise FilterError(f"CQL2-JSON filter is not valid JSON: {err}") from err
    if isinstance(document, dict) and "filter" in document and "op" not in document:
        lang = document.get("filter-lang", "cql2-json")
        if lang != "cql2-json":
            raise FilterError(f"filter-lang {lang!r} in a JSON body; expected 'cql2-json'")
        document = document["filter"]
    return _JsonWalker().condition(document, "filter")


class _JsonWalker:
    """CQL2-JSON to AST; ``path`` (e.g. ``filter.args[1]``) goes into every error message."""

    def condition(self, node: Any, path: str) -> Any:
        if isinstance(node, bool):
            return ast.Include(not_=not node)
        if not isinstance(node, dict) or "op" not in node:
            raise FilterError(f"{path} must be a CQL2-JSON predicate ({{'op': ..., 'args': [...]}}")
        op = node["op"]
        args = node.get("args")
        if not isinstance(op, str):
            raise FilterError(f"{path}.op must be a string, got {op!r}")
        if not isinstance(args, list):
            raise FilterError(f"{path}.args of {op!r} must be an array")
        name = op if op in COMPARISON_NODES else op.lower()
        here = f"{path}({op})"

        def arg(i: int) -> str:
            return f"{here}.args[{i}]"

        if name in ("and", "or"):
            if len(args) < 2:
                raise FilterError(f"{here} needs at least 2 arguments, got {len(args)}")
            items = [self.condition(a, arg(i)) for i, a in enumerate(args)]
            return (ast.And if name == "and" else ast.Or).from_items(*items)
        if name == "not":
            self._count(here, args, 1)
            return ast.Not(self.condition(args[0], arg(0)))
        if name in COMPARISON_NODES:
            self._count(here, args, 2)
            return COMPARISON_NODES[name](self.expression(args[0], arg(0)),
                                          self.expression(args[1], arg(1)))  # fmt: skip
        if name == "like":
            self._count(here, args, 2)
            return like(self.expression(args[0], arg(0)), self.expression(args[1], arg(1)))
        if name == "between":
            if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:
                args = [args[0], *args[1]]  # the draft form pygeofilter reads
            self._count(here, args, 3)
            lhs, low, high = (self.expression(a, arg(i)) for i, a in enumerate(args))
            return ast.Between(lhs, low, high, False)
        if name == "in":
            self._count(here, args, 2)
            if not isinstance(args[1], list):
                raise FilterError(f"{arg(1)} of 'in' must be an array of values")
            options = [self.expression(a, f"{arg(1)}[{i}]") for i, a in enumerate(args[1])]
            return ast.In(self.expression(args[0], arg(0)), options, False)
        if name == "isnull":
            self._count(here, args, 1)
            return ast.IsNull(self.expression(args[0], arg(0)), False)
        if name in SPATIAL_NODES:
            self._count(here, args, 2)
            return SPATIAL_NODES[name](self.expression(args[0], arg(0)),
                                       self.expression(args[1], arg(1)))  # fmt: skip
        if name == "s_dwithin":
            self._count(here, args, 3)
            distance = args[2]
            if isinstance(distance, bool) or not isinstance(distance, int | float):
                raise FilterError(f"{arg(2)} of 's_dwithin' must be a number (the distance)")
            lhs, rhs = self.expression(args[0], arg(0)), self.expression(args[1], arg(1))
            return ast.DistanceWithin(lhs, rhs, float(distance), None)
        if name in TEMPORAL_NAMES:
            self._count(here, args, 2)
            lhs, rhs = self.expression(args[0], arg(0)), self.expression(args[1], arg(1))
            return Temporal(name, lhs, rhs)
        raise FilterError(f"{path}: unknown or unsupported CQL2 operator {op!r}")

    def expression(self, node: Any, path: str) -> Any:
        if isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            raise FilterError(f"{path}: an array is only allowed as the values of 'in'")
        if not isinstance(node, dict):
            raise FilterError(f"{path}: unexpected value {node!r}")
        if "property" in node:
            name = node["property"]
            if not isinstance(name, str) or not name:
                raise FilterError(f"{path}.property must be a property name")
            return ast.Attribute(name)
        if "type" in node and ("coordinates" in node or "geometries" in node):
            return values.Geometry(node)
        if "bbox" in node:
            bbox = node["bbox"]
            if not isinstance(bbox, list):
                raise FilterError(f"{path}.bbox must be an array of 4 or 6 numbers")
            return bbox_geometry(bbox)
        if "timestamp" in node:
            return parse_timestamp(str(node["timestamp"]))
        if "date" in node:
            return parse_date(str(node["date"]))
        if "interval" in node:
            ends = node["interval"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise FilterError(f"{path}.interval must be an array of 2 instants")
            return values.Interval(*(self._interval_end(e, path) for e in ends))
        if "op" in node:
            op = str(node["op"]).lower()
            args = node.get("args")
            if not isinstance(args, list):
                raise FilterError(f"{path}.args of {op!r} must be an array")
            if op in ("casei", "accenti"):
                self._count(f"{path}({op})", args, 1)
                return ast.Function(op, [self.expression(args[0], f"{path}.args[0]")])
            if op in ARITHMETIC_NODES:
                self._count(f"{path}({op})", args, 2)
                lhs = self.expression(args[0], f"{path}.args[0]")
                return ARITHMETIC_NODES[op](lhs, self.expression(args[1], f"{path}.args[1]"))
            # A custom function: {"op": name, "args": [...]} (refused later if unknown).
            arguments = [self.expression(a, f"{path}.args[{i}]") for i, a in enumerate(args)]
            return ast.Function(op, arguments)
        if "function" in node:  # the pre-1.0 form
            function = node["function"]
            if not isinstance(function, dict) or "name" not in function:
                raise FilterError(f"{path}.function must have a name")
            args = function.get("args", function.get("arguments", []))
            arguments = [self.expression(a, f"{path}.args[{i}]") for i, a in enumerate(args)]
            return ast.Function(str(function["name"]).lower(), arguments)
        raise FilterError(f"{path}: cannot read {json.dumps(node)[:80]} as a CQL2 expression")

    def _interval_end(self, end: Any, path: str) -> date | datetime | None:
        if isinstance(end, str):
            return _instant(end)
        if isinstance(end, dict):
            value = self.expression(end, path)
            if isinstance(value, date):
                return value
        raise FilterError(f"{path}.interval ends must be dates, timestamps or '..'")

    @staticmethod
    def _count(where: str, args: list, expected: int) -> None:
        if len(args) != expected:
            raise FilterError(f"{where} needs {expected} argument(s), got {len(args)}")


def parse_filter(value: Any, lang: str | None = None) -> Any:
    """Parse a filter in ``lang`` ('cql2-text', 'cql2-json' or None: guess from the value).

    ``value`` may also be an AST already (returned as it is).
    """
    if isinstance(value, ast.Node):
        return value
    if lang not in (None, "cql2-text", "cql2-json", "cql-text", "cql-json"):
        raise FilterError(f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json")
    if isinstance(value, dict) or (lang or "").endswith("json"):
        return parse_json(value)
    return parse_text(value)


def walk(node: Any):
    """Every node and value of an AST, depth first."""
    yield node
    sub_nodes = getattr(node, "get_sub_nodes", None)
    if sub_nodes is not None and not isinstance(node, values.Interval):
        for child in sub_nodes():
            yield from walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from walk(child)


__all__ = [
    "CRS84_URN",
    "FilterError",
    "Temporal",
    "Token",
    "bbox_geometry",
    "like",
    "parse_filter",
    "parse_json",
    "parse_text",
    "walk",
]
