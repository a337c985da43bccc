"""The SQL of the two stores, side by side: SQLite on GeoPackage files, and PostGIS.

A :class:`Dialect` renders what differs between them (placeholders, how a column is compared
and ordered, spatial predicates, LIKE, case and accent folding) so that one query builder
(:mod:`cut_processes.providers.filters`, :class:`~cut_processes.providers.feature.FeatureProvider`)
serves both and both give the same answers:

======================  ======================================  ==================================
what                    SQLite (GeoPackage)                     PostgreSQL (PostGIS)
======================  ======================================  ==================================
string order, compare   bytes (BINARY collation)                ``COLLATE "C"`` (bytes)
date-time values        text normalised by ``strftime`` to UTC  ``timestamptz``
booleans                0 / 1                                   ``boolean``
nulls in ORDER BY       ``NULLS LAST`` both directions          ``NULLS LAST`` both directions
bbox                    R-tree overlap, exact test on the edge  ``ST_Intersects`` (GiST)
S_* functions           R-tree pre-filter, then an exact        ``ST_Intersects``, ``ST_Within``...
                        shapely test in an SQLite function      (GiST)
S_DWITHIN               R-tree box grown by the distance        ``ST_DWithin`` (storage CRS units)
LIKE                    ``GLOB`` (case-sensitive, as in CQL2)   ``LIKE ... ESCAPE '\\'``
CASEI                   Python ``str.lower``                    ``lower(... COLLATE "und-x-icu")``
ACCENTI                 a table of Latin letters (see below)    ``translate()``, the same table
division                real division, NULL for / 0             real division, NULL for / 0
======================  ======================================  ==================================

Empty geometries (GeoPackage files written by GDAL may hold them) count as NULL geometries.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any, ClassVar

import shapely

from cut_processes.providers.tables import TableInfo, utc

SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%f"
# SQLite functions the GeoPackage backend registers on its connections.
SQL_RELATES = "cut_relates"
SQL_INTERSECTS_BOX = "cut_gpkg_intersects_box"
SQL_CASEI = "cut_casei"
SQL_ACCENTI = "cut_accenti"


def quote(identifier: str) -> str:
    """An SQL identifier in double quotes (names come from table descriptions only)."""
    return '"' + identifier.replace('"', '""') + '"'


@functools.cache
def accent_table() -> tuple[str, str]:
    """(letters with diacritics, their base letters) for U+00C0..U+024F.

    A letter is folded when its canonical decomposition is an ASCII letter followed by
    combining marks only (so 'ä' -> 'a', 'Ç' -> 'C'; 'ß', 'æ', 'ø' stay).
    """
    source, target = [], []
    for code in range(0xC0, 0x250):
        letter = chr(code)
        decomposed = unicodedata.normalize("NFD", letter)
        base, marks = decomposed[0], decomposed[1:]
        if (
            marks
            and base.isascii()
            and base.isalpha()
            and all(unicodedata.combining(m) for m in marks)
        ):
            source.append(letter)
            target.append(base)
    return "".join(source), "".join(target)


@functools.cache
def _accent_translation() -> dict[int, str]:
    source, target = accent_table()
    return str.maketrans(source, target)


def casei(text: str | None) -> str | None:
    """CQL2 CASEI on SQLite: lower case (Python's full Unicode mapping)."""
    return None if text is None else str(text).lower()


def accenti(text: str | None) -> str | None:
    """CQL2 ACCENTI on SQLite: Latin letters without their diacritics (see accent_table)."""
    return None if text is None else str(text).translate(_accent_translation())


# A LIKE pattern is read into tokens first: ANY (%), ONE (_) or a literal character.
ANY, ONE = object(), object()


def like_tokens(pattern: str) -> list:
    """Tokens of a CQL2 LIKE pattern: % any characters, _ one character, \\ escapes the next.

    A trailing backslash stands for itself.
    """
    tokens: list = []
    escaped = False
    for char in pattern:
        if escaped:
            tokens.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            tokens.append(ANY)
        elif char == "_":
            tokens.append(ONE)
        else:
            tokens.append(char)
    if escaped:
        tokens.append("\\")
    return tokens


class Dialect:
    """What the SQL of one store needs to know; one instance per described table."""

    placeholder = "?"

    def __init__(self, table: TableInfo):
        self.table = table

    # names and values
    def ref(self, name: str) -> str:
        return quote(name)

    def value_ref(self, name: str, kind: str) -> str:
        """The expression compared (and ordered) for a column of ``kind``."""
        return quote(name)

    def param(self, kind: str, value: Any) -> Any:
        """A Python value (as ``tables.cast_query_value`` returns it) as a query parameter."""
        return value

    # functions
    def casei(self, sql: str) -> str:
        raise NotImplementedError

    def accenti(self, sql: str) -> tuple[str, list]:
        raise NotImplementedError

    def divide(self, dividend: str, divisor: str) -> str:
        raise NotImplementedError

    def like(self, sql: str, pattern_sql: str, negate: bool) -> str:
        raise NotImplementedError

    def like_pattern(self, tokens: list) -> str:
        raise NotImplementedError

    # geometry
    def geometry_is_null(self) -> str:
        raise NotImplementedError

    def bbox(self, minx: float, miny: float, maxx: float, maxy: float) -> tuple[str, list]:
        raise NotImplementedError

    def spatial(
        self,
        predicate: str,
        literal: shapely.Geometry,
        distance: float | None = None,
        negated: bool = False,
    ) -> tuple[str, list]:
        """``predicate`` (intersects, disjoint, contains, within, touches, crosses, overlaps,
        equals, dwithin) between the row's geometry (first) and a literal in the storage CRS.

        ``negated``: the predicate stands under an odd number of NOTs, where it must be NULL
        (not false) for rows without geometry, as in PostGIS.
        """
        raise NotImplementedError

    def geometry_select(self) -> str:
        """The SELECT expression of the geometry (a GeoPackage blob, or WKB)."""
        raise NotImplementedError


class SQLiteDialect(Dialect):
    """GeoPackage tables read with Python's sqlite3 (no SpatiaLite)."""

    placeholder = "?"

    def value_ref(self, name: str, kind: str) -> str:
        if kind == "datetime":
            # GeoPackage stores date-times as text, with or without an offset: normalise.
            return f"strftime('{SQLITE_TIME_FORMAT}', {quote(name)})"
        return quote(name)

    def param(self, kind: str, value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if kind == "datetime" and hasattr(value, "hour"):
            moment = utc(value)
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        if kind in ("date", "datetime") and hasattr(value, "isoformat"):
            return value.isoformat()
        return value

    def casei(self, sql: str) -> str:
        return f"{SQL_CASEI}({sql})"

    def accenti(self, sql: str) -> tuple[str, list]:
        return f"{SQL_ACCENTI}({sql})", []

    def divide(self, dividend: str, divisor: str) -> str:
        return f"(CAST({dividend} AS REAL) / NULLIF({divisor}, 0))"

    def like(self, sql: str, pattern_sql: str, negate: bool) -> str:
        # GLOB is case-sensitive (LIKE in SQLite is not, for ASCII) and knows UTF-8 characters.
        return f"{sql} {'NOT ' if negate else ''}GLOB {pattern_sql}"

    def like_pattern(self, tokens: list) -> str:
        special = {"*": "[*]", "?": "[?]", "[": "[[]"}
        return "".join("*" if t is ANY else "?" if t is ONE else special.get(t, t) for t in tokens)

    def _geometry(self) -> str:
        return quote(self.table.geometry_column)

    def geometry_is_null(self) -> str:
        geometry = self._geometry()
        return f"({geometry} IS NULL OR ST_IsEmpty({geometry}))"

    def geometry_select(self) -> str:
        return self._geometry()

    def _candidates(self, condition: str) -> str:
        """Keys of the rows whose R-tree box meets ``condition`` (on r.minx ... r.maxy)."""
        return (
            f"{quote(self.table.primary_key)} IN (SELECT r.id FROM "
            f"{quote(self.table.spatial_index)} AS r WHERE {condition})"
        )

    _OVERLAP = "r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"

    def bbox(self, minx: float, miny: float, maxx: float, maxy: float) -> tuple[str, list]:
        geometry = self._geometry()
        exact = f"{SQL_INTERSECTS_BOX}({{}}, ?, ?, ?, ?)"
        box = [minx, miny, maxx, maxy]
        if self.table.spatial_index is None:
            return exact.format(geometry), box
        # Envelope overlap from the index; inside the box: a match; on its edge: exact test.
        # The R*Tree stores float32 bounds rounded outwards, so both index tests are safe.
        pk = quote(self.table.primary_key)
        own = f"(SELECT {geometry} FROM {quote(self.table.name)} WHERE {pk} = r.id)"
        sql = self._candidates(
            f"{self._OVERLAP} AND ((r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?)"
            f" OR {exact.format(own)})"
        )
        return sql, [maxx, minx, maxy, miny, minx, maxx, miny, maxy, *box]

    def spatial(
        self,
        predicate: str,
        literal: shapely.Geometry,
        distance: float | None = None,
        negated: bool = False,
    ) -> tuple[str, list]:
        sql, params = self._spatial(predicate, literal, distance)
        if negated and self.table.spatial_index is not None:
            # The index form is false, not NULL, for rows without geometry: under NOT that
            # would select them. (Only here: a CASE keeps SQLite from using the index.)
            sql = f"(CASE WHEN {self.geometry_is_null()} THEN NULL ELSE {sql} END)"
        return sql, params

    def _spatial(
        self, predicate: str, literal: shapely.Geometry, distance: float | None
    ) -> tuple[str, list]:
        geometry = self._geometry()
        wkb = shapely.to_wkb(literal, byte_order=1)
        test = predicate if predicate != "disjoint" else "intersects"
        exact = f"{SQL_RELATES}('{test}', {geometry}, ?, ?)"
        exact_params: list = [wkb, distance]
        if self.table.spatial_index is None:
            if predicate == "disjoint":
                return f"{SQL_RELATES}('disjoint', {geometry}, ?, ?)", exact_params
            return exact, exact_params
        minx, miny, maxx, maxy = shapely.bounds(literal).tolist()
        if predicate == "dwithin":
            minx, miny, maxx, maxy = (
                minx - distance,
                miny - distance,
                maxx + distance,
                maxy + distance,
            )
        if predicate == "contains":
            # The row must cover the literal: its box contains the literal's box.
            candidates = self._candidates(
                "r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
            )
            box_params = [minx, maxx, miny, maxy]
        else:
            candidates = self._candidates(self._OVERLAP)
            box_params = [maxx, minx, maxy, miny]
        if predicate == "disjoint":
            # Disjoint = not intersecting; rows without geometry are neither.
            sql = f"(NOT {self.geometry_is_null()} AND NOT ({candidates} AND {exact}))"
            return sql, [*box_params, *exact_params]
        return f"({candidates} AND {exact})", [*box_params, *exact_params]


class PostgreSQLDialect(Dialect):
    """PostGIS tables read with psycopg 3."""

    placeholder = "%s"

    def __init__(self, table: TableInfo, icu: bool = True):
        super().__init__(table)
        self.icu = icu

    def value_ref(self, name: str, kind: str) -> str:
        if kind == "string":
            return f'{quote(name)} COLLATE "C"'
        return quote(name)

    def casei(self, sql: str) -> str:
        return f'lower({sql} COLLATE "und-x-icu")' if self.icu else f"lower({sql})"

    def accenti(self, sql: str) -> tuple[str, list]:
        source, target = accent_table()
        return f"translate({sql}, %s, %s)", [source, target]

    def divide(self, dividend: str, divisor: str) -> str:
        return f"(({dividend})::double precision / NULLIF({divisor}, 0))"

    def like(self, sql: str, pattern_sql: str, negate: bool) -> str:
        return f"{sql} {'NOT ' if negate else ''}LIKE {pattern_sql} ESCAPE '\\'"

    def like_pattern(self, tokens: list) -> str:
        special = {"%": "\\%", "_": "\\_", "\\": "\\\\"}
        return "".join("%" if t is ANY else "_" if t is ONE else special.get(t, t) for t in tokens)

    def _geometry(self) -> str:
        return quote(self.table.geometry_column)

    def _srid(self) -> int:
        return int(self.table.srid or 0)

    def geometry_is_null(self) -> str:
        geometry = self._geometry()
        return f"({geometry} IS NULL OR ST_IsEmpty({geometry}))"

    def geometry_select(self) -> str:
        return f"ST_AsBinary({self._geometry()})"

    def bbox(self, minx: float, miny: float, maxx: float, maxy: float) -> tuple[str, list]:
        envelope = f"ST_MakeEnvelope(%s, %s, %s, %s, {self._srid()})"
        return f"ST_Intersects({self._geometry()}, {envelope})", [minx, miny, maxx, maxy]

    _FUNCTIONS: ClassVar[dict[str, str]] = {
        "intersects": "ST_Intersects",
        "disjoint": "ST_Disjoint",
        "contains": "ST_Contains",
        "within": "ST_Within",
        "touches": "ST_Touches",
        "crosses": "ST_Crosses",
        "overlaps": "ST_Overlaps",
        "equals": "ST_Equals",
    }

    def spatial(
        self,
        predicate: str,
        literal: shapely.Geometry,
        distance: float | None = None,
        negated: bool = False,
    ) -> tuple[str, list]:
        literal_sql = f"ST_GeomFromWKB(%s, {self._srid()})"
        wkb = shapely.to_wkb(literal, byte_order=1)
        if predicate == "dwithin":
            return f"ST_DWithin({self._geometry()}, {literal_sql}, %s)", [wkb, distance]
        function = self._FUNCTIONS[predicate]
        return f"{function}({self._geometry()}, {literal_sql})", [wkb]
