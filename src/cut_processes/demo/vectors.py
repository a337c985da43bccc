"""Writes the vector layers of ``district.gpkg`` with fiona (GeoPackage, EPSG:25832).

Layers: ``buildings`` (Polygon), ``streets`` (LineString) and the non-spatial
``buildings_truth`` table (hidden truth; not to be served).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import fiona
from fiona.crs import CRS as FionaCRS
from shapely.geometry import mapping

from cut_processes.demo.buildings import Building
from cut_processes.demo.constants import CRS
from cut_processes.demo.streets import Street

BUILDINGS_SCHEMA = {
    "geometry": "Polygon",
    "properties": {
        "id": "str",
        "function": "str",
        "function_name": "str",
        "roof_type": "str",
        "measured_height": "float",
        "eaves_height": "float",
        "storeys": "int",
        "year_built": "int",
        "facade_image": "str",
        "district": "str",
        "footprint_area": "float",
        "source": "str",
    },
}
TRUTH_SCHEMA = {
    "geometry": "None",
    "properties": {
        "id": "str",
        "storeys": "int",
        "storey_height": "float",
        "ground_floor_height": "float",
        "has_attic_storey": "bool",
        "has_shop_front": "bool",
        "roof_height": "float",
        "building_type": "str",
        "era": "str",
    },
}
STREETS_SCHEMA = {
    "geometry": "LineString",
    "properties": {
        "id": "str",
        "name": "str",
        "road_class": "str",
        "lanes": "int",
        "width": "float",
        "source": "str",
    },
}


def street_properties(street: Street, index: int, source: str) -> dict:
    """Published attributes of a street (``id`` is ``DEMO_STREET_0001``...)."""
    return {
        "id": f"DEMO_STREET_{index + 1:04d}",
        "name": street.name,
        "road_class": street.road_class,
        "lanes": street.lanes,
        "width": street.width,
        "source": source,
    }


def write_gpkg(path: Path, buildings: list[Building], streets: list[Street], source: str) -> None:
    """Write all three layers into a new GeoPackage at ``path``."""
    crs = FionaCRS.from_string(CRS)
    with fiona.open(
        path, "w", driver="GPKG", crs=crs, schema=BUILDINGS_SCHEMA, layer="buildings"
    ) as dst:
        dst.writerecords(
            {"geometry": mapping(b.polygon), "properties": b.properties(source)} for b in buildings
        )
    with fiona.open(
        path, "w", driver="GPKG", crs=crs, schema=STREETS_SCHEMA, layer="streets"
    ) as dst:
        dst.writerecords(
            {"geometry": mapping(s.geometry), "properties": street_properties(s, i, source)}
            for i, s in enumerate(streets)
        )
    with fiona.open(path, "w", driver="GPKG", schema=TRUTH_SCHEMA, layer="buildings_truth") as dst:
        dst.writerecords({"geometry": None, "properties": b.truth()} for b in buildings)
    _index_ids(path, ("buildings", "streets", "buildings_truth"))


def _index_ids(path: Path, layers: tuple[str, ...]) -> None:
    """Unique indexes on ``id``: item look-ups (``/items/{id}``) then need no table scan."""
    with closing(sqlite3.connect(path)) as con, con:
        for layer in layers:
            con.execute(f'CREATE UNIQUE INDEX "{layer}_id_idx" ON "{layer}" ("id")')
