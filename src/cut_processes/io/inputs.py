"""Resolution of process inputs: inline GeoJSON, ``href`` references, collection references.

A feature input may be
- an inline GeoJSON FeatureCollection (coordinates in CRS84, as GeoJSON says, or in the CRS
  its legacy ``crs`` member names; projected coordinates without it and features with a
  ``crs`` of their own are refused),
- ``{"href": "https://..."}`` to GeoJSON, allowed only when the URL starts with one of the
  server's allow-listed prefixes (``allowed_hrefs``); under ``cut-twin run`` also a local file
  path (GeoJSON, GeoPackage, anything fiona reads),
- ``{"collection": "buildings", "bbox": [...], "filter": "CQL2 text"}``: read straight from the
  server's feature store through the collection's provider (no HTTP round trip).

Everything comes back as a :class:`FeatureSet` in the analysis CRS (metres). Problems raise
:class:`InputProblem` naming the input and what is wrong; the processes turn it into HTTP 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from cut_processes.io.records import epsg_from_name

ANALYSIS_CRS = 25832
MAX_HREF_BYTES = 256 * 1024 * 1024
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class InputProblem(ValueError):
    """An input cannot be used; ``input_name`` says which, ``problem`` why (for users)."""

    def __init__(self, input_name: str, problem: str):
        self.input_name = input_name
        self.problem = problem
        super().__init__(f"input '{input_name}': {problem}")


@dataclass
class FeatureSet:
    """Features as columns: ids, shapely geometries (analysis CRS), property dicts."""

    ids: list[Any]
    geometries: np.ndarray
    properties: list[dict[str, Any]]
    crs: int = ANALYSIS_CRS

    def __len__(self) -> int:
        return len(self.ids)


CollectionReader = Callable[[str, list[float] | None, str | None, int], dict]


@dataclass
class ResolveContext:
    """What the server (or the CLI) allows and offers for resolving inputs."""

    allowed_hrefs: list[str] = field(default_factory=list)
    allow_local_paths: bool = False
    collection_reader: CollectionReader | None = None
    max_features: int = 500_000
    analysis_crs: int = ANALYSIS_CRS


def _transformer(source: CRS | int | str, target: int) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(source), CRS.from_epsg(target), always_xy=True)


def _reproject(geoms: np.ndarray, source: CRS | int | str, target: int) -> np.ndarray:
    if CRS.from_user_input(source) == CRS.from_epsg(target):
        return geoms
    transformer = _transformer(source, target)
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(*xy.T)))


def collection_crs(name: str, collection: dict[str, Any]) -> int:
    """EPSG code of an inline FeatureCollection: its legacy ``crs`` member (as Hamburg's
    exports carry it), else CRS84 (4326), as GeoJSON says."""
    crs_name = ((collection.get("crs") or {}).get("properties") or {}).get("name")
    if crs_name is None:
        return 4326
    srid = epsg_from_name(crs_name)
    if srid is None:
        raise InputProblem(name, f"unknown crs {crs_name!r}; use an EPSG code or CRS84")
    return srid


def check_feature_crs(name: str, fid: Any, feature: dict[str, Any], srid: int) -> None:
    """Refuse what reprojection would silently get wrong: a feature with a ``crs`` of its own
    (mixed CRS in one input), and projected coordinates in a CRS84 input."""
    geometry = feature.get("geometry")
    if feature.get("crs") is not None or (
        isinstance(geometry, dict) and geometry.get("crs") is not None
    ):
        raise InputProblem(
            name,
            f"feature {fid!r} declares its own crs; mixed CRS in one input are not "
            "supported: give every feature in one CRS (the collection's crs member)",
        )
    if srid != 4326 or not isinstance(geometry, dict):
        return
    coords = geometry.get("coordinates")
    while isinstance(coords, list | tuple) and coords and isinstance(coords[0], list | tuple):
        coords = coords[0]  # the first position is enough to tell the CRS
    if (
        isinstance(coords, list | tuple)
        and len(coords) >= 2
        and all(isinstance(v, int | float) for v in coords[:2])
        and not (-180 <= coords[0] <= 180 and -90 <= coords[1] <= 90)
    ):
        raise InputProblem(
            name,
            f"feature {fid!r} has coordinates ({coords[0]}, {coords[1]}) outside "
            "longitude/latitude: GeoJSON is CRS84 unless the collection names its "
            'crs (e.g. "crs": {"type": "name", "properties": {"name": '
            '"urn:ogc:def:crs:EPSG::25832"}})',
        )


def _from_geojson(name: str, collection: Any) -> tuple:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise InputProblem(name, "expected a GeoJSON FeatureCollection")
    features = collection.get("features")
    if not isinstance(features, list):
        raise InputProblem(name, "the FeatureCollection has no 'features' list")
    srid = collection_crs(name, collection)
    ids, geoms, props = [], [], []
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InputProblem(name, f"feature {i} is not a GeoJSON Feature")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise InputProblem(name, f"feature {i}: 'properties' must be an object")
        fid = feature.get("id", properties.get("id", i))
        check_feature_crs(name, fid, feature, srid)
        geometry = feature.get("geometry")
        try:
            geom = shapely.from_geojson(json.dumps(geometry)) if geometry else None
        except (shapely.errors.GEOSException, ValueError, TypeError) as err:
            raise InputProblem(name, f"feature {fid}: unreadable geometry ({err})") from err
        ids.append(fid)
        geoms.append(geom)
        props.append(properties)
    return ids, np.array(geoms, dtype=object), props, srid


def _read_file(name: str, path: Path, layer: str | None = None) -> tuple:
    import fiona

    try:
        with fiona.open(path, layer=layer) if layer else fiona.open(path) as src:
            crs = CRS.from_user_input(src.crs.to_wkt()) if src.crs else CRS.from_epsg(4326)
            rows = list(src)
    except fiona.errors.FionaError as err:
        raise InputProblem(name, f"cannot read {path.name}: {err}") from err
    ids = [dict(r.properties).get("id", r.id) for r in rows]
    geoms = np.array(
        [shapely.geometry.shape(r.geometry) if r.geometry else None for r in rows], dtype=object
    )
    return ids, geoms, [dict(r.properties) for r in rows], crs


def local_path(name: str, reference: str, context: ResolveContext) -> Path | None:
    """The local file a reference names, if local files are allowed; else None."""
    if reference.startswith("file://"):
        reference = reference[len("file://") :]
    elif "://" in reference:
        return None
    if not context.allow_local_paths:
        raise InputProblem(name, "local file paths are only accepted by `cut-twin run`")
    path = Path(reference).expanduser()
    if not path.exists():
        raise InputProblem(name, f"file not found: {reference}")
    return path


def check_href_allowed(name: str, href: str, context: ResolveContext) -> None:
    """Only URLs under an allow-listed prefix may be fetched (no SSRF through inputs)."""
    if not any(href.startswith(prefix) for prefix in context.allowed_hrefs):
        allowed = ", ".join(context.allowed_hrefs) or "none are configured"
        raise InputProblem(name, f"href {href!r} is not allowed; allowed prefixes: {allowed}")


def _fetch_json(name: str, href: str) -> Any:
    import requests

    try:
        with requests.get(href, timeout=30, stream=True) as response:
            response.raise_for_status()
            body = response.raw.read(MAX_HREF_BYTES + 1, decode_content=True)
    except requests.RequestException as err:
        raise InputProblem(name, f"cannot fetch {href}: {err}") from err
    if len(body) > MAX_HREF_BYTES:
        raise InputProblem(name, f"{href} is larger than {MAX_HREF_BYTES} bytes")
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise InputProblem(name, f"{href} is not JSON: {err}") from err


def resolve_features(name: str, value: Any, context: ResolveContext) -> FeatureSet:
    """A feature input in any of its three forms, in the analysis CRS."""
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        ids, geoms, props, crs = _from_geojson(name, value)
    elif isinstance(value, dict) and "href" in value:
        href = str(value["href"])
        path = local_path(name, href, context)
        if path is not None:
            ids, geoms, props, crs = _read_file(name, path, value.get("layer"))
        else:
            check_href_allowed(name, href, context)
            ids, geoms, props, crs = _from_geojson(name, _fetch_json(name, href))
    elif isinstance(value, dict) and "collection" in value:
        ids, geoms, props, crs = _read_collection(name, value, context)
    else:
        raise InputProblem(
            name,
            'expected a GeoJSON FeatureCollection, {"href": ...} or '
            '{"collection": ..., "bbox": ..., "filter": ...}',
        )
    if len(ids) == 0:
        raise InputProblem(name, "no features: the collection is empty")
    if len(ids) > context.max_features:
        raise InputProblem(name, f"{len(ids)} features; at most {context.max_features} per job")
    geoms = _reproject(geoms, crs, context.analysis_crs)
    return FeatureSet(list(ids), geoms, props, context.analysis_crs)


def _read_collection(name: str, value: dict, context: ResolveContext) -> tuple:
    if context.collection_reader is None:
        raise InputProblem(name, "collection references are not available here")
    collection = value["collection"]
    bbox = value.get("bbox")
    if bbox is not None and (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) for v in bbox)
    ):
        raise InputProblem(name, "bbox must be [minx, miny, maxx, maxy] in CRS84")
    cql = value.get("filter")
    if cql is not None and not isinstance(cql, str):
        raise InputProblem(name, "filter must be CQL2 text")
    try:
        result = context.collection_reader(collection, bbox, cql, context.max_features + 1)
    except InputProblem as problem:  # the reader names the collection; the user named the input
        if problem.input_name == name:
            raise
        raise InputProblem(name, f"collection {collection!r}: {problem.problem}") from problem
    except LookupError as err:
        raise InputProblem(name, str(err)) from err
    features = result["features"]
    ids = [f.get("id") for f in features]
    geoms = np.array(
        [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in features],
        dtype=object,
    )
    return ids, geoms, [f.get("properties") or {} for f in features], result["crs"]


def require_polygons(name: str, features: FeatureSet) -> None:
    """Every feature needs a valid, non-empty (Multi)Polygon; the first offender is named."""
    geoms = features.geometries
    missing = np.array([g is None for g in geoms])
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InputProblem(name, f"feature {features.ids[i]!r} has no geometry")
    types = shapely.get_type_id(geoms)
    bad = ~np.isin(types, (3, 6))  # Polygon, MultiPolygon
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputProblem(
            name,
            f"feature {features.ids[i]!r} is a {geoms[i].geom_type}; buildings need Polygon "
            "or MultiPolygon footprints",
        )
    empty = shapely.is_empty(geoms)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise InputProblem(name, f"feature {features.ids[i]!r} has an empty geometry")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        # Repair what GEOS can (self-touching rings are common in cadastre data).
        features.geometries[invalid] = shapely.make_valid(geoms[invalid])


def to_crs84(geoms: np.ndarray, source: int = ANALYSIS_CRS) -> np.ndarray:
    """Geometries in CRS84 (longitude, latitude) for GeoJSON output."""
    return _reproject(geoms, source, 4326)
