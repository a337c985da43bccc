"""Arrays of shapely geometries to GeoJSON geometry dicts, and their CRS transformation.

Both work on a whole page of features at once: one ``shapely.to_ragged_array`` per geometry
family and one PROJ call for all coordinates, instead of a Python loop over features.
Coordinates are copied exactly (no rounding).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pyproj
import shapely
from pygeoapi.crs import CrsTransformSpec

# shapely.GeometryType ids
_POINT, _LINESTRING, _LINEARRING, _POLYGON = 0, 1, 2, 3
_MULTIPOINT, _MULTILINESTRING, _MULTIPOLYGON, _COLLECTION = 4, 5, 6, 7

_TYPE_NAMES = {
    _POINT: "Point",
    _LINESTRING: "LineString",
    _POLYGON: "Polygon",
    _MULTIPOINT: "MultiPoint",
    _MULTILINESTRING: "MultiLineString",
    _MULTIPOLYGON: "MultiPolygon",
}
# A family's single and multi type; to_ragged_array writes a mixed family as multi.
_FAMILIES = ((_POINT, _MULTIPOINT), (_LINESTRING, _MULTILINESTRING), (_POLYGON, _MULTIPOLYGON))


def to_geojson_geometries(geometries: np.ndarray) -> list[dict | None]:
    """GeoJSON geometry dicts for an array of shapely geometries.

    ``None`` and empty geometries give ``None`` (a GeoJSON null geometry). Coordinates are
    Python floats equal to the stored doubles; 3D geometries keep their z. Linear rings are
    written as LineStrings, geometry collections recursively.
    """
    geometries = np.asarray(geometries, dtype=object)
    result: list[dict | None] = [None] * len(geometries)
    if not len(geometries):
        return result
    type_ids = shapely.get_type_id(geometries)
    present = (type_ids >= 0) & ~shapely.is_empty(geometries)
    has_z = shapely.has_z(geometries)
    for family in _FAMILIES:
        in_family = present & np.isin(type_ids, family)
        for with_z in (False, True):
            indices = np.flatnonzero(in_family & (has_z == with_z))
            if indices.size:
                _fill_family(result, geometries, type_ids, indices, with_z)
    for i in np.flatnonzero(present & (type_ids == _LINEARRING)):
        line = shapely.LineString(geometries[i])
        result[i] = to_geojson_geometries(np.array([line], dtype=object))[0]
    for i in np.flatnonzero(present & (type_ids == _COLLECTION)):
        parts = to_geojson_geometries(shapely.get_parts(geometries[i]))
        result[i] = {"type": "GeometryCollection", "geometries": [p for p in parts if p]}
    return result


def _fill_family(
    result: list, geometries: np.ndarray, type_ids: np.ndarray, indices: np.ndarray, with_z: bool
) -> None:
    """Write the GeoJSON of one family's geometries (same dimensionality) into ``result``."""
    written_type, coords, offsets = shapely.to_ragged_array(geometries[indices], include_z=with_z)
    nested = coords.tolist()
    for level in offsets:
        bounds = level.tolist()
        nested = [nested[start:end] for start, end in itertools.pairwise(bounds)]
    # A family mixing single and multi geometries is written as multi: a single one is then
    # the first and only part.
    written_as_multi = int(written_type) in (_MULTIPOINT, _MULTILINESTRING, _MULTIPOLYGON)
    for k, i in enumerate(indices.tolist()):
        type_id = int(type_ids[i])
        coordinates = nested[k]
        if written_as_multi and type_id in (_POINT, _LINESTRING, _POLYGON):
            coordinates = coordinates[0]
        result[i] = {"type": _TYPE_NAMES[type_id], "coordinates": coordinates}


@functools.lru_cache(maxsize=32)
def _transformer(source_wkt: str, target_wkt: str, always_xy: bool) -> pyproj.Transformer:
    # Built exactly as pygeoapi.crs.get_transform_from_spec builds it, so that axis order and
    # the chosen operation match pygeoapi's own per-feature transformation.
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_wkt(source_wkt), pyproj.CRS.from_wkt(target_wkt), always_xy=always_xy
    )


def transformer_for(spec: CrsTransformSpec) -> pyproj.Transformer:
    """The (cached) pyproj transformer for a pygeoapi ``CrsTransformSpec``."""
    return _transformer(spec.source_crs_wkt, spec.target_crs_wkt, bool(spec.always_xy))


def transform_geometries(geometries: np.ndarray, spec: CrsTransformSpec | None) -> np.ndarray:
    """Transform an array of geometries from ``spec``'s source CRS to its target CRS.

    ``None`` spec returns the input. Axis order follows pygeoapi: with ``always_xy`` false
    (pygeoapi's default) output is in the target CRS's axis order, e.g. latitude, longitude for
    EPSG:4326 and longitude, latitude for OGC CRS84. z coordinates are transformed too where
    present.
    """
    if spec is None:
        return geometries
    transformer = transformer_for(spec)
    return shapely.transform(geometries, transformer.transform, include_z=None, interleaved=False)
