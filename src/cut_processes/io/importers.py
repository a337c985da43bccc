"""The import formats of ``cut-twin import`` and how a result is written to the store.

An import reads every given file first and writes only then, in one
``FeatureStore.replace_collection`` call: the collection is replaced as a whole (a second
import of the same files gives the same collection), and a file that cannot be read stops
the import before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cut_processes.io.records import ImportResult
from cut_processes.settings import Settings


@dataclass(frozen=True)
class ImportFormat:
    """One format: its reader, a one-line description and the usual collection name."""

    name: str
    summary: str
    default_collection: str
    reader: Callable[..., ImportResult]


def _citygml(paths, **options):
    from cut_processes.io.citygml import read_citygml

    return read_citygml(paths, **options)


def _cityjson(paths, **options):
    from cut_processes.io.cityjson import read_cityjson

    return read_cityjson(paths, **options)


def _dipas_geojson(paths, **options):
    from cut_processes.io.dipas import read_dipas_geojson

    return read_dipas_geojson(paths, **options)


def _dipas_csv(paths, **options):
    from cut_processes.io.dipas import read_dipas_csv

    return read_dipas_csv(paths, **options)


def _cimt(paths, **options):
    from cut_processes.io.cimt import read_cimt

    return read_cimt(paths, **options)


def _munich_stations(paths, **options):
    from cut_processes.io.counters import read_munich_stations

    return read_munich_stations(paths, **options)


def _munich_counts(paths, **options):
    from cut_processes.io.counters import read_munich_counts

    return read_munich_counts(paths, **options)


def _station_geojson(paths, **options):
    from cut_processes.io.counters import read_station_geojson

    return read_station_geojson(paths, **options)


def _dbrad(paths, **options):
    from cut_processes.io.dbrad import read_dbrad

    return read_dbrad(paths, **options)


def _sensorthings(paths, **options):
    from cut_processes.io.sensorthings import read_sensorthings

    if len(paths) != 1:
        raise ValueError("sensorthings reads one service root URL")
    return read_sensorthings(str(paths[0]), **options)


FORMATS: dict[str, ImportFormat] = {
    f.name: f
    for f in (
        ImportFormat(
            "citygml",
            "CityGML 1.0/2.0 LoD2 tiles: building footprints with LoD2 attributes",
            "buildings-lod2",
            _citygml,
        ),
        ImportFormat(
            "cityjson",
            "CityJSON 1.1/2.0 (also .city.jsonl): building footprints with LoD2 attributes",
            "buildings-lod2",
            _cityjson,
        ),
        ImportFormat(
            "dipas-geojson",
            "DIPAS PDS GeoJSON of a proceeding's contributions",
            "contributions",
            _dipas_geojson,
        ),
        ImportFormat(
            "dipas-csv",
            "DIPAS contributions CSV export (';'-separated)",
            "contributions",
            _dipas_csv,
        ),
        ImportFormat(
            "cimt",
            "CIMT corpora: DIPAS Ottensen (topic labels) or cycling dialogues CSV",
            "contributions",
            _cimt,
        ),
        ImportFormat(
            "munich-stations",
            "Munich bicycle counting stations CSV (WGS84 points)",
            "counting-stations",
            _munich_stations,
        ),
        ImportFormat(
            "munich-counts",
            "Munich daily bicycle counts CSV (per station, day and direction, with weather)",
            "counts",
            _munich_counts,
        ),
        ImportFormat(
            "station-geojson",
            "Counting stations as GeoJSON points (e.g. Hamburg's Verkehrszählstellen)",
            "counting-stations",
            _station_geojson,
        ),
        ImportFormat(
            "sensorthings",
            "SensorThings API (FROST) datastreams' observations, from a service root URL",
            "observations",
            _sensorthings,
        ),
        ImportFormat(
            "dbrad",
            "DB Rad+ weekly segment volumes GeoJSON (Hamburg)",
            "segment-volumes",
            _dbrad,
        ),
    )
}


def default_store_location() -> str:
    """``$CUT_STORE``, else the demo district's GeoPackage (``$CUT_DATA_DIR/district.gpkg``)."""
    return os.environ.get("CUT_STORE") or str(Settings.from_env().data_dir / "district.gpkg")


def write_result(result: ImportResult, collection: str, location: str | Path) -> int:
    """Replace ``collection`` in the store at ``location`` with the result's features.

    Returns the number of features written (0 writes nothing: an empty import never
    replaces a collection).
    """
    if not result.features:
        return 0
    from cut_processes.io.store import open_store

    store = open_store(location)
    return store.replace_collection(
        collection,
        result.features,
        fields=result.fields,
        geometry_type=result.geometry_type,
        srid=result.srid,
        id_field=result.id_field,
    )
