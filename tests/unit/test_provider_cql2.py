"""CQL2 text and JSON parsing (cut_processes.providers.cql2): CQL2 1.0 where pygeofilter is not."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pygeofilter import ast, values

from cut_processes.providers.cql2 import FilterError, Temporal, parse_filter, parse_json, parse_text


def test_and_binds_tighter_than_or():
    tree = parse_text("a = 1 OR b = 2 AND c = 3")
    assert isinstance(tree, ast.Or)
    assert isinstance(tree.rhs, ast.And)


def test_not_applies_to_one_predicate():
    tree = parse_text("NOT a = 1 AND b = 2")
    assert isinstance(tree, ast.And) and isinstance(tree.lhs, ast.Not)


def test_strings_with_quotes_and_identifiers():
    tree = parse_text("\"weird name\" = 'O''Brien' AND ä = 1 AND x = 2")
    first = tree.lhs.lhs
    assert first.lhs.name == "weird name" and first.rhs == "O'Brien"
    assert tree.lhs.rhs.lhs.name == "ä"
    assert tree.rhs.lhs.name == "x"  # one-character names


def test_keywords_inside_names_are_names():
    tree = parse_text("andrea = 1 AND oregon = 2 AND notes IS NULL")
    assert [n.lhs.name for n in (tree.lhs.lhs, tree.lhs.rhs, tree.rhs)] == [
        "andrea", "oregon", "notes",
    ]  # fmt: skip
    assert parse_text("date = 1").lhs.name == "date"  # DATE( is the literal, date a name


def test_like_uses_cql2_wildcards():
    node = parse_text("name LIKE 'a_b%'")
    assert (node.wildcard, node.singlechar, node.escapechar) == ("%", "_", "\\")


def test_temporal_functions_are_called_like_functions():
    node = parse_text("T_DURING(surveyed, INTERVAL('2024-01-01', '..'))")
    assert isinstance(node, Temporal) and node.name == "t_during"
    assert node.rhs == values.Interval(date(2024, 1, 1), None)
    node = parse_text("T_BEFORE(surveyed, TIMESTAMP('2024-01-01T10:00:00'))")
    assert node.rhs == datetime(2024, 1, 1, 10, tzinfo=UTC)  # no offset: UTC


def test_bbox_is_a_literal_and_dwithin_parses():
    node = parse_text("S_INTERSECTS(geometry, BBOX(1, 2, 3, 4))")
    assert node.rhs.geometry["coordinates"][0][2] == [3.0, 4.0]
    node = parse_text("S_DWITHIN(geometry, POINT(1 2), 100)")
    assert isinstance(node, ast.DistanceWithin) and node.distance == 100.0


def test_srid_in_ewkt_names_the_crs():
    node = parse_text("S_WITHIN(geometry, SRID=25832;POINT(1 2))")
    assert node.rhs.geometry["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::25832"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "filter is empty"),
        ("storeys =", "it ends too early"),
        ("storeys == 3", "unexpected '=' at column 10"),
        ("storeys = 3 foo", "unexpected 'foo' at column 13"),
        ("name = 'x", "unexpected character \"'\" at column 8"),
        ("T_BEFORE(x, TIMESTAMP('nope'))", "TIMESTAMP('nope') is not an RFC 3339 date-time"),
        ("built = DATE('2020-13-01')", "DATE('2020-13-01') is not a date"),
        ("S_INTERSECTS(geometry, BBOX(1,2,3))", "unexpected ')'"),
    ],
)
def test_text_syntax_errors_name_the_problem(text, message):
    with pytest.raises(FilterError, match=_re(message)):
        parse_text(text)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_json_between_in_like_casei_and_spatial():
    tree = parse_json(
        {
            "op": "and",
            "args": [
                {"op": "between", "args": [{"property": "h"}, 1, 2]},
                {"op": "in", "args": [{"property": "n"}, ["a", "b"]]},
                {"op": "like", "args": [{"op": "casei", "args": [{"property": "n"}]}, "a%"]},
                {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [1, 2, 3, 4]}]},
                {"op": "s_dwithin", "args": [{"property": "geometry"},
                                             {"type": "Point", "coordinates": [1, 2]}, 5]},
                {"op": "t_after", "args": [{"property": "t"},
                                           {"timestamp": "2024-01-01T00:00:00Z"}]},
                {"op": "not", "args": [{"op": "isNull", "args": [{"property": "n"}]}]},
            ],
        }
    )  # fmt: skip
    nodes = []
    while isinstance(tree, ast.And):
        nodes.insert(0, tree.rhs)
        tree = tree.lhs
    nodes.insert(0, tree)
    kinds = [type(n).__name__ for n in nodes]
    assert kinds == ["Between", "In", "Like", "GeometryIntersects", "DistanceWithin", "Temporal",
                     "Not"]  # fmt: skip
    assert nodes[0].low == 1 and nodes[0].high == 2
    assert nodes[2].lhs.name == "casei"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{", "CQL2-JSON filter is not valid JSON"),
        ('{"op": "foo", "args": []}', "unknown or unsupported CQL2 operator 'foo'"),
        ('{"op": "=", "args": [1]}', "filter(=) needs 2 argument(s), got 1"),
        ('{"op": "in", "args": [{"property": "x"}, 1]}', "args[1] of 'in' must be an array"),
        ('{"op": "=", "args": [{"property": ""}, 1]}', "property must be a property name"),
        ('{"op": "and", "args": [{"op": "=", "args": [1, 1]}, 3]}', "filter(and).args[1] must be"),
        ('[1, 2]', "filter must be a CQL2-JSON predicate"),
    ],
)
def test_json_errors_name_the_place(document, message):
    with pytest.raises(FilterError, match=_re(message)):
        parse_json(document)


def test_text_starting_with_a_brace_is_json_and_languages_are_checked():
    assert isinstance(parse_text('{"op": "=", "args": [{"property": "a"}, 1]}'), ast.Equal)
    assert isinstance(parse_filter("a = 1", "cql2-text"), ast.Equal)
    assert isinstance(parse_filter('{"op": "=", "args": [{"property": "a"}, 1]}', "cql2-json"),
                      ast.Equal)  # fmt: skip
    with pytest.raises(FilterError, match="filter-lang 'sql' is not supported"):
        parse_filter("a = 1", "sql")


def test_parsed_trees_are_fresh_copies():
    first = parse_text("S_INTERSECTS(geometry, POINT(1 2))")
    first.rhs.geometry["crs"] = "changed"
    assert "crs" not in parse_text("S_INTERSECTS(geometry, POINT(1 2))").rhs.geometry
