"""Roof surfaces: the height above ground of a building's roof at given points (vectorised).

Flat roofs are at ``measured_height``. Pitched roofs rise from ``eaves_height`` to
``measured_height``: gable and half-hip roofs with the ridge along the long axis of the
minimum rotated rectangle, hip, tent and mansard roofs with the distance to the outline (which
also gives ridges along both wings of L-shapes and around courtyards), mono-pitch roofs across
the short axis, sawtooth roofs in bays along the long axis, arched roofs across the short axis.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely import Polygon

from cut_processes.demo import codes


def boundary_distance(poly: Polygon, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Distance (m) from each point to the nearest edge of ``poly`` (exterior or hole)."""
    starts, ends = [], []
    for ring in [poly.exterior, *poly.interiors]:
        c = np.asarray(ring.coords)
        starts.append(c[:-1])
        ends.append(c[1:])
    a = np.concatenate(starts)
    ab = np.concatenate(ends) - a
    px = xs[:, None] - a[None, :, 0]
    py = ys[:, None] - a[None, :, 1]
    ab2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    t = np.clip((px * ab[None, :, 0] + py * ab[None, :, 1]) / ab2[None, :], 0.0, 1.0)
    dx = px - t * ab[None, :, 0]
    dy = py - t * ab[None, :, 1]
    return np.sqrt(dx * dx + dy * dy).min(axis=1)


def _axes(poly: Polygon) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
    """Centre, long-axis unit vector, short-axis unit vector, half length, half width (m),
    and the rectangularity (area / area of the minimum rotated rectangle)."""
    env = shapely.oriented_envelope(poly)
    c = np.asarray(env.exterior.coords)[:4]
    e1, e2 = c[1] - c[0], c[2] - c[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    along, across = (e1 / l1, e2 / l2) if l1 >= l2 else (e2 / l2, e1 / l1)
    rect = float(poly.area / env.area) if env.area > 0 else 0.0
    return c.mean(axis=0), along, across, max(l1, l2) / 2.0, min(l1, l2) / 2.0, rect


def roof_surface(
    poly: Polygon,
    roof_type: str,
    eaves_height: float,
    measured_height: float,
    xs: np.ndarray,
    ys: np.ndarray,
) -> np.ndarray:
    """Roof height above ground (m) at points (``xs``, ``ys``) inside ``poly``."""
    rise = measured_height - eaves_height
    if roof_type == codes.FLAT or rise <= 0.01 or xs.size == 0:
        return np.full(xs.shape, measured_height, dtype=float)
    centre, along, across, half_len, half_wid, rect = _axes(poly)
    half_wid = max(half_wid, 0.5)
    u = (xs - centre[0]) * along[0] + (ys - centre[1]) * along[1]
    v = (xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]
    simple = rect > 0.93 and not poly.interiors

    def by_distance() -> np.ndarray:
        d = boundary_distance(poly, xs, ys)
        return d / max(float(d.max()), 0.5)

    if roof_type == codes.GABLE:
        t = 1.0 - np.abs(v) / half_wid if simple else by_distance()
    elif roof_type == codes.HALF_HIP:
        if simple:
            t = np.minimum(1.0 - np.abs(v) / half_wid, 0.5 + (half_len - np.abs(u)) / half_wid)
        else:
            t = by_distance()
    elif roof_type == codes.MANSARD:
        s = by_distance()
        t = 0.75 * np.minimum(s / 0.3, 1.0) + 0.25 * np.clip((s - 0.3) / 0.7, 0.0, 1.0)
    elif roof_type == codes.MONO_PITCH:
        t = (v + half_wid) / (2.0 * half_wid)
    elif roof_type == codes.SAWTOOTH:
        bays = max(1, round(2.0 * half_len / 9.0))
        period = 2.0 * half_len / bays
        t = np.mod(u + half_len, period) / period
    elif roof_type == codes.ARCH:
        t = np.sqrt(np.clip(1.0 - (v / half_wid) ** 2, 0.0, 1.0))
    else:  # hip, tent and anything else pitched
        t = by_distance()
    return eaves_height + rise * np.clip(t, 0.0, 1.0)


#: Dormers of attic storeys: width along the roof and spacing (m), and the band of the roof
#: slope they sit in, as fractions of the roof rise above the eaves.
DORMER_WIDTH = 2.4
DORMER_SPACING = 4.5
DORMER_BAND = (0.12, 0.62)


def add_dormers(
    poly: Polygon,
    eaves_height: float,
    measured_height: float,
    xs: np.ndarray,
    ys: np.ndarray,
    roof: np.ndarray,
) -> np.ndarray:
    """The roof with dormers, as an attic storey needs them for daylight.

    Dormers are flat-topped boxes at 70 % of the roof rise, in a row along the long axis on
    the slope band :data:`DORMER_BAND`; they show in a DSM as they do in LoD2 models.
    """
    rise = measured_height - eaves_height
    if rise <= 0.5 or xs.size == 0:
        return roof
    centre, along, _across, half_length, _half_width, _rect = _axes(poly)
    s = (xs - centre[0]) * along[0] + (ys - centre[1]) * along[1] + half_length
    relative = (roof - eaves_height) / rise
    in_band = (relative >= DORMER_BAND[0]) & (relative <= DORMER_BAND[1])
    # Whole dormers only, away from the gable ends.
    in_row = (np.mod(s - 1.5, DORMER_SPACING) < DORMER_WIDTH) & (s > 1.5)
    in_row &= s < 2 * half_length - 1.5
    top = eaves_height + 0.7 * rise
    return np.where(in_band & in_row, np.maximum(roof, top), roof)
