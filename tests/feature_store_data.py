"""Test data of the feature store tests: hand-made places with known answers, and provider
definitions on either store. A module of its own (not conftest.py) so that test modules can
import it by a name no other conftest shadows; the fixtures are in tests/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "pygeoapi-config.yml"
POSTGIS_ADMIN_URL = os.environ.get(
    "CUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STORE_SRID = 25832
STORE_X0, STORE_Y0 = 562000.0, 5934000.0  # EPSG:25832, in the demo district
EPSG_25832_URI = "http://www.opengis.net/def/crs/EPSG/0/25832"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
STORE_PLACES_FIELDS = {
    "id": "string",
    "name": "string",
    "storeys": "integer",
    "height": "number",
    "flat": "boolean",
    "built": "date",
    "surveyed": "datetime",
    "tags": "json",
}


def _store_ring(*points: tuple[float, float]) -> list:
    return [[STORE_X0 + x, STORE_Y0 + y] for x, y in (*points, points[0])]


def _store_square(x: float, y: float, size: float) -> dict:
    ring = _store_ring((x, y), (x + size, y), (x + size, y + size), (x, y + size))
    return {"type": "Polygon", "coordinates": [ring]}


def _store_place(id_, geometry, name, storeys, height, flat, built, surveyed, tags=None) -> dict:
    properties = {"id": id_, "name": name, "storeys": storeys, "height": height, "flat": flat,
                  "built": built, "surveyed": surveyed, "tags": tags}  # fmt: skip
    return {"type": "Feature", "id": id_, "geometry": geometry, "properties": properties}


def store_places() -> list[dict]:
    """Twelve hand-made places (EPSG:25832, metres from STORE_X0/Y0) with known answers.

    p01 is the square (0,0)-(10,10). p06 is a point inside it, p08 a line crossing it, p09 the
    same square, p10 a square touching its east edge, p12 a square overlapping it. p05 has no
    geometry, p03 no attributes. Names test umlauts, case, accents, quotes and LIKE wildcards.
    """
    x0, y0 = STORE_X0, STORE_Y0
    return [
        _store_place("p01", _store_square(0, 0, 10), "Wohnhaus", 3, 9.5, True, "1990-05-01",
                     "2024-03-01T10:00:00Z", {"roof": "flat"}),
        _store_place("p02", _store_square(20, 0, 10), "Bürogebäude", 5, 17.25, False,
                     "2005-11-30", "2024-03-02T08:30:00Z"),
        _store_place("p03", _store_square(40, 0, 10), "Wohnhaus", None, None, None, None, None),
        _store_place("p04", {"type": "Polygon", "coordinates": [_store_ring((100, 0), (120, 0),
                     (100, 20))]}, "Garage", 1, 3.0, True, "2010-01-01",
                     "2024-03-03T12:00:00+02:00"),
        _store_place("p05", None, "Schuppen", 1, 2.5, False, "2011-06-15",
                     "2024-03-03T23:30:00Z"),
        _store_place("p06", {"type": "Point", "coordinates": [x0 + 5, y0 + 5]}, "Ärztehaus", 2,
                     6.0, False, "2012-02-29", "2024-03-04T00:00:00Z", {"rooms": [1, 2]}),
        _store_place("p07", {"type": "LineString", "coordinates": [[x0, y0 + 20],
                     [x0 + 60, y0 + 20]]}, "100% Öko", 4, 12.0, True, "1970-01-01", None),
        _store_place("p08", {"type": "LineString", "coordinates": [[x0 + 5, y0 - 5],
                     [x0 + 5, y0 + 15]]}, "Über_gang", None, 4.0, None, None, None),
        _store_place("p09", _store_square(0, 0, 10), "wohnhaus", 2, 7.0, False, "1999-12-31",
                     "2024-02-29T12:00:00Z"),
        _store_place("p10", _store_square(10, 0, 10), "Café Müller", 2, 8.0, True, "2020-07-14",
                     "2024-03-05T06:00:00Z"),
        _store_place("p11", _store_square(1000, 1000, 10), "Garage", 1, 2.8, True, "1985-03-03",
                     "2024-03-02T08:30:00Z"),
        _store_place("p12", _store_square(5, 5, 10), "O'Brien", 6, 19.5, False, "2001-09-11",
                     "2023-12-31T23:59:59Z"),
    ]  # fmt: skip


def store_provider_def(location: str, table: str = "places", **extra) -> dict:
    """A FeatureProvider definition on a GeoPackage path or a postgresql:// URL."""
    is_url = location.startswith("postgresql://")
    return {
        "type": "feature",
        "name": "cut_processes.providers.FeatureProvider",
        "data": "unused.gpkg" if is_url else location,
        "store": location if is_url else "",
        "table": table,
        "id_field": "id",
        "storage_crs": EPSG_25832_URI,
        "crs": [CRS84_URI, EPSG_25832_URI, "http://www.opengis.net/def/crs/EPSG/0/4326"],
        **extra,
    }
