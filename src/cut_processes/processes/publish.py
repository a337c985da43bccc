"""Results collections: a process's output published as an OGC API - Features collection.

A process run with ``"publish": true`` appends its output features to the collection
``<process-id>-results`` (for example ``floor-count-results``) in the results store, each
feature tagged with the ``job_id`` that produced it, so a client loads one run as a layer:
``/collections/floor-count-results/items?job_id=<job id>``. Publishing the same job again
replaces that job's features (delete by ``job_id``, then append).

The results store is ``$CUT_RESULTS_STORE``; else the feature store ``$CUT_STORE`` when that
is PostGIS; else ``<CUT_VAR_DIR>/results.gpkg``. A collection the server serves needs a
config entry and a table with a fixed schema (pygeoapi reads the fields when it starts and
when it writes the OpenAPI document), so each served results collection is registered in
:data:`RESULTS_COLLECTIONS` with its fields, and :func:`ensure_results_collections` creates
the empty tables (``cut-twin serve`` and ``cut-twin openapi`` call it).

Every results table has the columns of :data:`STANDARD_FIELDS` plus the process's own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import shapely
import shapely.geometry
from pyproj import Transformer

from cut_processes.settings import Settings

RESULTS_SUFFIX = "-results"
RESULTS_SRID = 25832
#: Columns of every results table.
STANDARD_FIELDS = {
    "id": "string",
    "job_id": "string",
    "process_id": "string",
    "feature_id": "string",
    "published_at": "datetime",
}


@dataclass(frozen=True)
class ResultsCollection:
    """A served results collection: the process's own fields and the geometry type.

    Output properties not among ``fields`` are kept in the ``attributes`` JSON column.
    """

    process_id: str
    fields: Mapping[str, str]
    geometry_type: str
    srid: int = RESULTS_SRID
    #: A process with several outputs of different geometry publishes each into its own
    #: collection ``<process-id>-<part>-results``.
    part: str | None = None

    @property
    def key(self) -> str:
        return results_key(self.process_id, self.part)

    @property
    def name(self) -> str:
        return results_collection_name(self.process_id, self.part)

    @property
    def all_fields(self) -> dict[str, str]:
        return {**STANDARD_FIELDS, **self.fields, "attributes": "json"}


#: The results collections the server configuration serves (pygeoapi-config.yml).
RESULTS_COLLECTIONS: dict[str, ResultsCollection] = {
    "floor-count": ResultsCollection(
        "floor-count",
        {
            "storeys_estimated": "integer",
            "storeys_range": "json",
            "storeys": "integer",
            "storeys_check": "string",
            "confidence": "number",
            "method": "string",
            "model": "string",
            "explanation": "json",
            "needs_review": "boolean",
            "function": "string",
            "measured_height": "number",
        },
        "MultiPolygon",
    ),
    "contribution-topics": ResultsCollection(
        "contribution-topics",
        {
            "title": "string",
            "topic": "string",
            "topics": "json",
            "scores": "json",
            "confidence": "number",
            "explanation": "json",
            "needs_review": "boolean",
            "category": "string",
            "date_created": "string",
        },
        "Point",
    ),
    "cycling-volumes-stations": ResultsCollection(
        "cycling-volumes",
        {
            "station_id": "string",
            "name": "string",
            "dtv": "number",
            "dtv_year": "integer",
            "share_imputed": "number",
            "trend": "json",
            "anomalies": "json",
            "segment_id": "string",
        },
        "Point",
        part="stations",
    ),
    "cycling-volumes-segments": ResultsCollection(
        "cycling-volumes",
        {
            "segment_id": "string",
            "name": "string",
            "road_class": "string",
            "rides_per_day": "number",
            "relative_volume": "number",
            "cyclists_estimated": "number",
            "cyclists_low": "number",
            "cyclists_high": "number",
            "calibration": "string",
        },
        "MultiLineString",
        part="segments",
    ),
    "cycling-volumes-corridors": ResultsCollection(
        "cycling-volumes",
        {
            "rank": "integer",
            "names": "json",
            "length_m": "number",
            "ride_km": "number",
            "volume_mean": "number",
            "share_official": "number",
        },
        "MultiLineString",
        part="corridors",
    ),
}


class PublishError(ValueError):
    """Features that do not fit the results collection (unknown field, wrong geometry)."""


def results_key(process_id: str, part: str | None = None) -> str:
    """The key of a results collection in :data:`RESULTS_COLLECTIONS`."""
    return f"{process_id}-{part}" if part else process_id


def results_collection_name(process_id: str, part: str | None = None) -> str:
    return f"{results_key(process_id, part)}{RESULTS_SUFFIX}"


def results_store_location() -> str:
    """Where results collections live (see the module docstring)."""
    explicit = os.environ.get("CUT_RESULTS_STORE")
    if explicit:
        return explicit
    store = os.environ.get("CUT_STORE", "")
    if store.startswith(("postgresql://", "postgres://")):
        return store
    return str(Settings.from_env().var_dir / "results.gpkg")


def prepare_results_store() -> str:
    """Create the empty results tables and export where they live as ``CUT_RESULTS_STORE``.

    pygeoapi describes every collection (fields) when it starts and when it writes the
    OpenAPI document, so the tables must exist before the first publication; and the
    configuration's ``${CUT_RESULTS_STORE:-var/results.gpkg}`` cannot follow ``CUT_VAR_DIR``
    by itself (pygeoapi's variables do not nest), so the resolved location is exported for
    the configuration to read. The app factory and ``cut-twin serve``/``openapi`` call this.
    """
    location = results_store_location()
    os.environ["CUT_RESULTS_STORE"] = location
    if not location.startswith(("postgresql://", "postgres://")):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
    ensure_results_collections(location)
    return location


def _open(location: str | Path | None):
    from cut_processes.io.store import open_store

    return open_store(location or results_store_location())


def ensure_results_collections(location: str | Path | None = None) -> list[str]:
    """Create the empty table of every registered results collection that is missing.

    Returns the names created. The server can then describe the collections before the
    first publication.
    """
    store = _open(location)
    existing = set(store.collections())
    created = []
    for spec in RESULTS_COLLECTIONS.values():
        if spec.name in existing:
            continue
        store.append_features(
            spec.name,
            [],
            fields=spec.all_fields,
            geometry_type=spec.geometry_type,
            srid=spec.srid,
        )
        created.append(spec.name)
    return created


def _href(name: str, job_id: str, base_url: str | None) -> str:
    base = (base_url if base_url is not None else os.environ.get("CUT_URL", "")).rstrip("/")
    return f"{base}/collections/{name}/items?job_id={quote(job_id, safe='')}"


def _as_multi(geometry: Any, geometry_type: str) -> Any:
    if geometry is None or not geometry_type.startswith("Multi"):
        return geometry
    if geometry.get("type") == geometry_type.removeprefix("Multi"):
        return {"type": geometry_type, "coordinates": [geometry["coordinates"]]}
    return geometry


def publish_features(
    process_id: str,
    job_id: str,
    features: Iterable[dict[str, Any]],
    fields: Mapping[str, str],
    geometry_type: str,
    srid: int = RESULTS_SRID,
    *,
    location: str | Path | None = None,
    base_url: str | None = None,
    part: str | None = None,
) -> dict[str, Any]:
    """Publish a job's features into ``<process_id>-results`` (``<process_id>-<part>-results``).

    :param features: GeoJSON-like features in ``srid`` coordinates; their properties named in
        ``fields`` are stored in columns, the others (when the collection is registered) in
        ``attributes``.
    :param fields: field types of the properties (store types: string, integer, number,
        boolean, date, datetime, json).
    :returns: ``{"collection": name, "count": n, "href": items URL filtered by job_id}``.
    :raises PublishError: fields or geometry type contradict the registered collection.
    """
    if not job_id:
        raise PublishError("publishing needs the job id")
    name = results_collection_name(process_id, part)
    spec = RESULTS_COLLECTIONS.get(results_key(process_id, part))
    if spec is not None:
        if geometry_type != spec.geometry_type or srid != spec.srid:
            raise PublishError(
                f"{name} holds {spec.geometry_type} in EPSG:{spec.srid}, "
                f"not {geometry_type} in EPSG:{srid}"
            )
        columns = spec.all_fields
        for key, kind in fields.items():
            if key in columns and columns[key] != kind:
                raise PublishError(f"{name}: field {key!r} is {columns[key]}, not {kind}")
    else:
        columns = {**STANDARD_FIELDS, **fields}
    published_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    records = []
    for index, item in enumerate(features):
        properties = dict(item.get("properties") or {})
        feature_id = item.get("id", properties.get("id"))
        feature_id = str(feature_id) if feature_id is not None else str(index)
        own = {k: v for k, v in properties.items() if k in columns and k not in STANDARD_FIELDS}
        rest = {k: v for k, v in properties.items() if k not in own and k != "id"}
        record = {key: None for key in columns}
        record.update(own)
        if "attributes" in columns:
            record["attributes"] = rest or None
        record.update(
            id=f"{job_id}:{feature_id}",
            job_id=job_id,
            process_id=process_id,
            feature_id=feature_id,
            published_at=published_at,
        )
        records.append(
            {
                "type": "Feature",
                "id": record["id"],
                "geometry": _as_multi(item.get("geometry"), geometry_type),
                "properties": record,
            }
        )
    store = _open(location)
    if name in store.collections():
        store.delete_features(name, {"job_id": job_id})
    count = store.append_features(
        name, records, fields=columns, geometry_type=geometry_type, srid=srid
    )
    return {"collection": name, "count": count, "href": _href(name, job_id, base_url)}


def publish_feature_collection(
    process_id: str,
    job_id: str,
    collection: dict[str, Any],
    *,
    crs: str = "OGC:CRS84",
    location: str | Path | None = None,
    base_url: str | None = None,
    part: str | None = None,
) -> dict[str, Any]:
    """Publish a process output (a GeoJSON FeatureCollection in ``crs``, CRS84 by default).

    Geometries are transformed to the results collection's CRS. For a registered collection
    the properties map onto its columns (the rest goes to ``attributes``); otherwise the
    field types are inferred from the values.
    """
    spec = RESULTS_COLLECTIONS.get(results_key(process_id, part))
    srid = spec.srid if spec else RESULTS_SRID
    features = list(collection.get("features") or [])
    transformer = Transformer.from_crs(crs, f"EPSG:{srid}", always_xy=True)
    moved = []
    for item in features:
        geometry = item.get("geometry")
        if geometry is not None:
            geom = shapely.transform(
                shapely.geometry.shape(geometry),
                lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])),
            )
            geometry = shapely.geometry.mapping(geom)
        moved.append({**item, "geometry": geometry})
    if spec is not None:
        fields = dict(spec.fields)
        geometry_type = spec.geometry_type
    else:
        fields = infer_fields(f.get("properties") or {} for f in features)
        types = {f["geometry"]["type"] for f in moved if f.get("geometry")}
        geometry_type = types.pop() if len(types) == 1 else "Geometry"
    return publish_features(
        process_id,
        job_id,
        moved,
        fields,
        geometry_type,
        srid,
        location=location,
        base_url=base_url,
        part=part,
    )


def infer_fields(properties: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Store field types from property values (mixed or unknown values become json)."""
    kinds: dict[str, set[str]] = {}
    for props in properties:
        for key, value in props.items():
            if key in STANDARD_FIELDS:
                continue
            kinds.setdefault(key, set())
            if value is None:
                continue
            if isinstance(value, bool):
                kinds[key].add("boolean")
            elif isinstance(value, int):
                kinds[key].add("integer")
            elif isinstance(value, float):
                kinds[key].add("number")
            elif isinstance(value, str):
                kinds[key].add("string")
            else:
                kinds[key].add("json")
    fields = {}
    for key, found in kinds.items():
        if found <= {"integer", "number"} and "number" in found:
            fields[key] = "number"
        elif len(found) == 1:
            fields[key] = found.pop()
        elif not found:
            fields[key] = "string"
        else:
            fields[key] = "json"
    return fields
