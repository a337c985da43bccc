"""What a process may reach: allow-listed hrefs, the server's collections, rasters, images.

Built from the process's ``processor:`` block in the pygeoapi configuration and, for
collection references, the configuration's feature providers (read through the provider, so
filters run in the store, not in Python).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pygeoapi.plugin import load_plugin
from pygeoapi.provider import get_provider_by_type
from pygeoapi.util import yaml_load

from cut_processes.io.inputs import CRS84, InputProblem, ResolveContext


@lru_cache(maxsize=4)
def _load_config(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml_load(fh)


def server_config() -> dict:
    """The pygeoapi configuration this process runs under (``$PYGEOAPI_CONFIG``)."""
    path = os.environ.get("PYGEOAPI_CONFIG") or "pygeoapi-config.yml"
    if not Path(path).is_file():
        return {}
    return _load_config(str(Path(path).resolve()), Path(path).stat().st_mtime)


def _epsg(uri: str | None) -> int | str:
    if not uri:
        return 4326
    if uri.rstrip("/").endswith("CRS84"):
        return 4326
    tail = uri.rstrip("/").split("/")[-1]
    return int(tail) if tail.isdigit() else uri


def read_collection(collection: str, bbox: list[float] | None, cql: str | None, limit: int):
    """Features of a configured collection, in its storage CRS, filtered in the store."""
    resources = server_config().get("resources", {})
    resource = resources.get(collection)
    if not resource or resource.get("type") != "collection":
        known = sorted(k for k, v in resources.items() if v.get("type") == "collection")
        raise LookupError(f"unknown collection {collection!r}; known: {', '.join(known)}")
    provider_def = get_provider_by_type(resource["providers"], "feature")
    provider = load_plugin("provider", provider_def)
    storage = provider_def.get("storage_crs", CRS84)
    query: dict[str, Any] = {"offset": 0, "limit": limit}
    if bbox is not None:
        from pygeoapi.crs import transform_bbox

        query["bbox"] = transform_bbox(bbox, CRS84, storage) if _epsg(storage) != 4326 else bbox
    if cql:
        from pygeofilter.parsers.cql2_text import parse

        try:
            query["filterq"] = parse(cql)
        except Exception as err:  # pygeofilter raises lark errors of many kinds
            raise InputProblem(collection, f"invalid CQL2 filter: {err}") from err
    try:
        result = provider.query(**query)
    except Exception as err:
        raise InputProblem(collection, f"cannot read the collection: {err}") from err
    return {"features": result["features"], "crs": _epsg(storage)}


def resolve_context(processor_def: dict[str, Any], allow_local_paths: bool) -> ResolveContext:
    """The input resolution rules of one process."""
    allowed = processor_def.get("allowed_hrefs") or []
    if isinstance(allowed, str):
        allowed = [a.strip() for a in allowed.split(",") if a.strip()]
    return ResolveContext(
        allowed_hrefs=list(allowed),
        allow_local_paths=allow_local_paths,
        collection_reader=read_collection,
        max_features=int(processor_def.get("max_features", 500_000)),
    )
