"""CityJSON 1.1/2.0 buildings -> the same footprints and attributes as the CityGML importer.

Reads a CityJSON file (``{"type": "CityJSON", "transform": ..., "CityObjects": ...,
"vertices": ...}``) or a CityJSON Text Sequence (``.city.jsonl``: the CityJSON header line,
then one ``CityJSONFeature`` per line with its own vertices). Vertices are integers scaled
and translated by ``transform`` (``x = i * scale[0] + translate[0]``); files without
``transform`` (CityJSON 1.0) hold real coordinates.

Each ``Building`` (an object without ``parents``) with its ``BuildingPart`` children (by
``children``, recursively) becomes one feature. Of its geometries the one with the highest
LoD 2.x is used (else the highest LoD); ``semantics`` say which surfaces are GroundSurface and
RoofSurface. Attributes ``measuredHeight``, ``storeysAboveGround``, ``roofType`` and
``function`` are read from ``attributes``. Footprints, ground, eaves and ridge heights and the
merging of parts are those of :mod:`cut_processes.io.citygml`. The CRS is
``metadata.referenceSystem`` (an EPSG URL; compound codes such as 7415 work).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cut_processes.io.citygml import FIELDS, GEOMETRY_TYPE, Part, Rings, merge_parts, to_feature
from cut_processes.io.records import (
    DEFAULT_SRID,
    ImportResult,
    UnreadableFileError,
    dedupe_ids,
    epsg_from_name,
    transformer,
)

_ATTRIBUTES = {
    "measuredHeight": "measuredHeight",
    "storeysAboveGround": "storeysAboveGround",
    "roofType": "roofType",
    "function": "function",
}


def _lod_key(geometry: dict[str, Any]) -> tuple[int, float]:
    try:
        lod = float(str(geometry.get("lod", "0")))
    except ValueError:
        lod = 0.0
    return (1 if 2 <= lod < 3 else 0, lod)


def _surfaces(geometry: dict[str, Any]) -> Iterator[tuple[list[list[int]], str | None]]:
    """(rings of vertex indices, semantic surface type) of every surface of a geometry."""
    kind = geometry.get("type")
    boundaries = geometry.get("boundaries") or []
    semantics = geometry.get("semantics") or {}
    surface_types = [s.get("type") for s in semantics.get("surfaces", [])]
    values = semantics.get("values")

    def semantic(index: Any) -> str | None:
        if isinstance(index, int) and 0 <= index < len(surface_types):
            return surface_types[index]
        return None

    if kind in ("MultiSurface", "CompositeSurface"):
        for i, surface in enumerate(boundaries):
            yield surface, semantic(values[i] if values else None)
    elif kind == "Solid":
        for s, shell in enumerate(boundaries):
            for i, surface in enumerate(shell):
                yield surface, semantic(values[s][i] if values else None)
    elif kind in ("MultiSolid", "CompositeSolid"):
        for d, solid in enumerate(boundaries):
            for s, shell in enumerate(solid):
                for i, surface in enumerate(shell):
                    yield surface, semantic(values[d][s][i] if values else None)


def _part(object_id: str, city_object: dict[str, Any], vertices: np.ndarray) -> Part:
    attributes = city_object.get("attributes") or {}
    part = Part(object_id)
    for key, name in _ATTRIBUTES.items():
        value = attributes.get(key)
        if value is not None and str(value).strip():
            part.attributes[name] = str(value).strip()
    geometries = [g for g in city_object.get("geometry") or [] if g.get("boundaries")]
    if not geometries:
        return part
    geometry = max(geometries, key=_lod_key)
    for rings, surface_type in _surfaces(geometry):
        try:
            polygon = Rings([vertices[np.asarray(ring, dtype=int)] for ring in rings if ring])
        except (IndexError, ValueError) as err:
            raise ValueError(f"{object_id}: bad vertex index ({err})") from None
        if not polygon.rings:
            continue
        part.surfaces.append(polygon)
        if geometry.get("type", "").endswith("Solid"):
            part.solid.append(polygon)
        if surface_type == "GroundSurface":
            part.ground.append(polygon)
        elif surface_type == "RoofSurface":
            part.roof.append(polygon)
    return part


def _vertices(document: dict[str, Any], transform: dict[str, Any] | None) -> np.ndarray:
    vertices = np.asarray(document.get("vertices") or [], dtype=float).reshape(-1, 3)
    if transform:
        vertices = vertices * np.asarray(transform.get("scale", [1, 1, 1]), dtype=float)
        vertices = vertices + np.asarray(transform.get("translate", [0, 0, 0]), dtype=float)
    return vertices


def _documents(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """(header, iterator of documents holding CityObjects + vertices) of a file."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        if "Extra data" not in str(err):
            raise UnreadableFileError(path, f"not JSON: {err}") from None
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError as err2:
            raise UnreadableFileError(path, f"not JSON: {err2}") from None

        def features() -> Iterator[dict[str, Any]]:
            for number, line in enumerate(lines[1:], start=2):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err3:
                    raise UnreadableFileError(path, f"line {number} is not JSON: {err3}") from None

        return header, features()
    if not isinstance(document, dict) or document.get("type") != "CityJSON":
        raise UnreadableFileError(path, 'not CityJSON (no "type": "CityJSON")')
    return document, iter([document])


def read_cityjson(
    paths: Sequence[str | Path],
    *,
    source_srid: int | None = None,
    target_srid: int = DEFAULT_SRID,
    licence: str | None = None,
) -> ImportResult:
    """Buildings of CityJSON files (or CityJSON Text Sequences) as footprints.

    :raises UnreadableFileError: a file is not CityJSON or names no CRS and none is given.
    """
    result = ImportResult([], dict(FIELDS), GEOMETRY_TYPE, target_srid)
    for path in map(Path, paths):
        if not path.is_file():
            raise UnreadableFileError(path, "no such file")
        header, documents = _documents(path)
        if header.get("type") != "CityJSON":
            raise UnreadableFileError(path, 'not CityJSON (no "type": "CityJSON")')
        srid = source_srid or epsg_from_name((header.get("metadata") or {}).get("referenceSystem"))
        if srid is None:
            raise UnreadableFileError(path, "names no referenceSystem; give the EPSG code")
        to_target = None if srid == target_srid else transformer(f"EPSG:{srid}", target_srid)
        for document in documents:
            vertices = _vertices(document, header.get("transform"))
            objects = document.get("CityObjects") or {}
            for object_id, city_object in objects.items():
                if city_object.get("type") != "Building" or city_object.get("parents"):
                    continue
                where = f"{path.name} building {object_id}"
                try:
                    own = _part(object_id, city_object, vertices)
                    parts = list(_children(object_id, objects, vertices))
                    properties, footprint = merge_parts(own, parts, path.name, licence)
                    result.features.append(to_feature(properties, footprint, to_target))
                except ValueError as err:
                    result.reject(where, str(err))
    dedupe_ids(result, "CityJSON")
    return result


def _children(
    object_id: str, objects: dict[str, Any], vertices: np.ndarray, depth: int = 0
) -> Iterator[Part]:
    if depth > 10:
        raise ValueError(f"{object_id}: building parts nested deeper than 10 levels")
    for child_id in objects.get(object_id, {}).get("children") or []:
        child = objects.get(child_id)
        if child is None or child.get("type") != "BuildingPart":
            continue
        yield _part(child_id, child, vertices)
        yield from _children(child_id, objects, vertices, depth + 1)
