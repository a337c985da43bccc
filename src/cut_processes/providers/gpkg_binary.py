"""GeoPackage geometry blobs ("GeoPackageBinary", OGC 12-128r19 section 2.1.3) to shapely.

A blob is a header followed by standard WKB::

    magic 'GP' | version (1 byte) | flags (1 byte) | srs_id (int32) | envelope (0..64 bytes) | WKB

Flags: bit 0 byte order of the header numbers, bits 1-3 the envelope indicator (0: none,
1: xy, 2: xyz, 3: xym, 4: xyzm), bit 4 empty geometry, bit 5 extended (non-standard WKB).
"""

from __future__ import annotations

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
