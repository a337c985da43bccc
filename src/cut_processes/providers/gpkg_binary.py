"""GeoPackage geometry blobs ("GeoPackageBinary", OGC 12-128r19 section 2.1.3) to and from
shapely, and the SQLite functions the GeoPackage store registers on its connections.

A blob is a header followed by standard WKB::

    magic 'GP' | version (1 byte) | flags (1 byte) | srs_id (int32) | envelope (0..64 bytes) | WKB

Flags: bit 0 byte order of the header numbers, bits 1-3 the envelope indicator (0: none,
1: xy, 2: xyz, 3: xym, 4: xyzm), bit 4 empty geometry, bit 5 extended (non-standard WKB).

SQL functions (deterministic; NULL and empty geometries give NULL or never match):
``blob_intersects_box`` (the exact part of ``bbox``), ``blob_relates`` (the exact part of the
CQL2 spatial functions, on the rows the R-tree pre-selects; the literal is decoded and prepared
once per query) and the ``ST_MinX``... functions that GeoPackage R-tree triggers call.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

import numpy as np
import shapely

# Envelope length in bytes by envelope indicator; indicators 5-7 are invalid.
_ENVELOPE_BYTES = (0, 32, 48, 48, 64)
_HEADER_BYTES = 8
_EMPTY_FLAG = 0x10
_EXTENDED_FLAG = 0x20


class GeoPackageBlobError(ValueError):
    """A geometry blob that is not standard GeoPackageBinary."""


def wkb_of(blob: bytes | None) -> bytes | None:
    """Return the WKB part of one GeoPackage geometry blob.

    ``None`` for SQL NULL and for blobs flagged empty (GeoPackage writes an empty geometry as
    e.g. ``POINT (NaN NaN)`` with the empty flag, which is no geometry for GeoJSON).
    Raises :class:`GeoPackageBlobError` for a blob without the 'GP' magic, an invalid envelope
    indicator or the extended (non-standard) geometry flag.
    """
    if blob is None:
        return None
    if len(blob) < _HEADER_BYTES or blob[0] != 0x47 or blob[1] != 0x50:  # b"GP"
        raise GeoPackageBlobError(f"not a GeoPackage geometry blob: starts with {blob[:4]!r}")
    flags = blob[3]
    if flags & _EMPTY_FLAG:
        return None
    if flags & _EXTENDED_FLAG:
        raise GeoPackageBlobError("extended GeoPackage geometry blobs are not supported")
    indicator = (flags >> 1) & 0x07
    if indicator >= len(_ENVELOPE_BYTES):
        raise GeoPackageBlobError(f"invalid GeoPackage envelope indicator {indicator}")
    return blob[_HEADER_BYTES + _ENVELOPE_BYTES[indicator] :]


def geometries_from_blobs(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Decode a sequence of GeoPackage geometry blobs into an array of shapely geometries.

    The WKB of all blobs is decoded in one vectorised ``shapely.from_wkb`` call. NULL and empty
    blobs become ``None``. Coordinates stay in the storage CRS of the table.
    """
    wkbs = np.empty(len(blobs), dtype=object)
    wkbs[:] = [wkb_of(blob) for blob in blobs]
    return shapely.from_wkb(wkbs)


def envelope_of(blob: bytes) -> tuple[float, float, float, float] | None:
    """Return the (minx, miny, maxx, maxy) envelope stored in a blob header, if it has one."""
    flags = blob[3]
    if not (flags >> 1) & 0x07:
        return None
    order = "<" if flags & 0x01 else ">"
    # The envelope starts with minx, maxx, miny, maxy whatever its dimensions.
    minx, maxx, miny, maxy = struct.unpack_from(f"{order}4d", blob, _HEADER_BYTES)
    return minx, miny, maxx, maxy


def blob_intersects_box(
    blob: bytes | None, minx: float, miny: float, maxx: float, maxy: float
) -> int:
    """Exact test whether the geometry of one blob intersects an axis-aligned box.

    Returns 1 or 0 (it is registered as an SQLite function). NULL and empty geometries never
    intersect. A stored envelope inside the box answers without decoding the WKB.
    """
    wkb = wkb_of(blob)
    if wkb is None:
        return 0
    envelope = envelope_of(blob)
    if envelope is not None:
        e_minx, e_miny, e_maxx, e_maxy = envelope
        if e_minx > maxx or e_maxx < minx or e_miny > maxy or e_maxy < miny:
            return 0
        if e_minx >= minx and e_maxx <= maxx and e_miny >= miny and e_maxy <= maxy:
            return 1
    geometry = shapely.from_wkb(wkb)
    return int(shapely.intersects(geometry, shapely.box(minx, miny, maxx, maxy)))


# --- writing ------------------------------------------------------------------------------

# Flags of the blobs we write: little-endian header numbers (bit 0) and an xy envelope
# (indicator 1, bits 1-3); the empty flag (bit 4) for empty geometries.
_WRITE_FLAGS_ENVELOPE = 0x01 | (1 << 1)
_WRITE_FLAGS_POINT = 0x01
_POINT_TYPE_ID = 0


def blobs_from_geometries(geometries: Sequence, srs_id: int) -> list[bytes | None]:
    """GeoPackage blobs for an array of shapely geometries (``None`` stays SQL NULL).

    Standard GeoPackageBinary, little-endian, ISO WKB (so 3D geometries keep their z); every
    geometry except points carries its xy envelope, as GDAL writes it. Empty geometries get
    the empty flag. The WKB of all geometries is written in one vectorised call.
    """
    geometries = np.asarray(geometries, dtype=object)
    if not len(geometries):
        return []
    wkbs = shapely.to_wkb(geometries, flavor="iso", byte_order=1)
    bounds = shapely.bounds(geometries)
    type_ids = shapely.get_type_id(geometries)
    empty = shapely.is_empty(geometries)
    header_srs = struct.pack("<i", srs_id)
    blobs: list[bytes | None] = []
    for wkb, box, type_id, is_empty in zip(
        wkbs.tolist(), bounds.tolist(), type_ids.tolist(), empty.tolist(), strict=True
    ):
        if wkb is None:
            blobs.append(None)
        elif is_empty:
            blobs.append(b"GP\x00" + bytes([_WRITE_FLAGS_POINT | _EMPTY_FLAG]) + header_srs + wkb)
        elif type_id == _POINT_TYPE_ID:
            blobs.append(b"GP\x00" + bytes([_WRITE_FLAGS_POINT]) + header_srs + wkb)
        else:
            minx, miny, maxx, maxy = box
            envelope = struct.pack("<4d", minx, maxx, miny, maxy)
            blobs.append(b"GP\x00" + bytes([_WRITE_FLAGS_ENVELOPE]) + header_srs + envelope + wkb)
    return blobs


def blob_bounds(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, miny, maxx, maxy) of one blob: from its envelope, else from its geometry.

    ``None`` for NULL and empty geometries.
    """
    wkb = wkb_of(blob)
    if wkb is None:
        return None
    envelope = envelope_of(blob)
    if envelope is not None:
        return envelope
    geometry = shapely.from_wkb(wkb)
    if geometry.is_empty:
        return None
    minx, miny, maxx, maxy = geometry.bounds
    return minx, miny, maxx, maxy


# The SQL functions that the GeoPackage R-tree triggers call (GDAL and SpatiaLite provide them;
# a plain sqlite3 connection that writes to a features table needs them too).


def st_is_empty(blob: bytes | None) -> int | None:
    if blob is None:
        return None
    return int(blob_bounds(blob) is None)


def _bound(index: int):
    def function(blob: bytes | None) -> float | None:
        bounds = blob_bounds(blob)
        return None if bounds is None else bounds[index]

    return function


GEOPACKAGE_TRIGGER_FUNCTIONS = {
    "ST_IsEmpty": st_is_empty,
    "ST_MinX": _bound(0),
    "ST_MinY": _bound(1),
    "ST_MaxX": _bound(2),
    "ST_MaxY": _bound(3),
}


# --- exact spatial predicates -------------------------------------------------------------

SPATIAL_PREDICATES = {
    "intersects": shapely.intersects,
    "disjoint": shapely.disjoint,
    "contains": shapely.contains,
    "within": shapely.within,
    "touches": shapely.touches,
    "crosses": shapely.crosses,
    "overlaps": shapely.overlaps,
    "equals": shapely.equals,
}


@functools.lru_cache(maxsize=64)
def _literal(wkb: bytes) -> shapely.Geometry:
    """The literal geometry of a filter, decoded and prepared once per query (not per row)."""
    geometry = shapely.from_wkb(wkb)
    shapely.prepare(geometry)
    return geometry


def blob_relates(
    predicate: str, blob: bytes | None, literal_wkb: bytes, distance: float | None = None
) -> int | None:
    """Whether the geometry of one blob stands in ``predicate`` to a literal geometry.

    ``predicate`` is one of :data:`SPATIAL_PREDICATES` (the row's geometry first: 'within'
    means the row lies within the literal) or 'dwithin' (distance <= ``distance``, in the
    units of the storage CRS). Registered as a deterministic SQLite function; returns NULL for
    NULL and empty geometries, as SQL predicates on NULL do.
    """
    wkb = wkb_of(blob)
    if wkb is None:
        return None
    geometry = shapely.from_wkb(wkb)
    if geometry.is_empty:
        return None
    literal = _literal(literal_wkb)
    if predicate == "dwithin":
        return int(shapely.dwithin(literal, geometry, distance))
    # Prepared literal on the left: the predicate is mirrored where it is not symmetric.
    if predicate == "within":
        return int(shapely.contains(literal, geometry))
    if predicate == "contains":
        return int(shapely.within(literal, geometry))
    return int(SPATIAL_PREDICATES[predicate](literal, geometry))
