"""DTM and DSM rasters of the demo district (1 m, float32, EPSG:25832, metres above sea level).

DSM = DTM + buildings + tree crowns + small noise. Each building stands on the mean DTM
elevation under its footprint, so a flat roof is level in absolute terms; roofs come from
:mod:`cut_processes.demo.roofs`. Trees are only drawn where there is no building.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin

from cut_processes.demo.buildings import Building
from cut_processes.demo.constants import (
    CRS,
    NODATA,
    RASTER_HEIGHT,
    RASTER_WIDTH,
    RESOLUTION,
    XMIN,
    YMAX,
)
from cut_processes.demo.roofs import add_dormers, roof_surface
from cut_processes.demo.trees import Trees

#: Pixel-to-map transform of both rasters (north-up, 1 m pixels, origin at the NW corner).
TRANSFORM: Affine = from_origin(XMIN, YMAX, RESOLUTION, RESOLUTION)

#: Standard deviation (m) of the DSM noise.
DSM_NOISE = 0.05


def _window(bounds: tuple[float, float, float, float], pad: float = 0.0) -> tuple[slice, slice]:
    """Row and column slices of the raster cells touching ``bounds`` (m), clipped to the grid."""
    minx, miny, maxx, maxy = bounds
    c0 = max(int(np.floor((minx - pad - XMIN) / RESOLUTION)), 0)
    c1 = min(int(np.ceil((maxx + pad - XMIN) / RESOLUTION)), RASTER_WIDTH)
    r0 = max(int(np.floor((YMAX - maxy - pad) / RESOLUTION)), 0)
    r1 = min(int(np.ceil((YMAX - miny + pad) / RESOLUTION)), RASTER_HEIGHT)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _centres(rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (m) of the cell centres in a window, as 2-D arrays."""
    xs = XMIN + (np.arange(cols.start, cols.stop) + 0.5) * RESOLUTION
    ys = YMAX - (np.arange(rows.start, rows.stop) + 0.5) * RESOLUTION
    return np.meshgrid(xs, ys)


def building_labels(buildings: list[Building]) -> np.ndarray:
    """int32 raster: 1-based index of the building covering each cell centre, 0 elsewhere."""
    shapes = ((b.polygon, i + 1) for i, b in enumerate(buildings))
    return rasterize(
        shapes,
        out_shape=(RASTER_HEIGHT, RASTER_WIDTH),
        transform=TRANSFORM,
        fill=0,
        dtype="int32",
    )


def build_dsm(
    dtm: np.ndarray, buildings: list[Building], trees: Trees, rng: np.random.Generator
) -> np.ndarray:
    """The DSM (float32, m above sea level) for ``dtm``, ``buildings`` and ``trees``."""
    labels = building_labels(buildings)
    dsm = dtm.astype(np.float64)
    for i, b in enumerate(buildings):
        rows, cols = _window(b.polygon.bounds)
        mask = labels[rows, cols] == i + 1
        if not mask.any():
            continue
        xs, ys = _centres(rows, cols)
        base = float(dtm[rows, cols][mask].mean())
        roof = roof_surface(
            b.polygon, b.roof_type, b.eaves_height, b.measured_height, xs[mask], ys[mask]
        )
        if b.has_attic_storey:
            roof = add_dormers(
                b.polygon, b.eaves_height, b.measured_height, xs[mask], ys[mask], roof
            )
        dsm[rows, cols][mask] = base + roof
    for x, y, h, r in zip(trees.x, trees.y, trees.height, trees.radius, strict=True):
        rows, cols = _window((x - r, y - r, x + r, y + r))
        if rows.stop <= rows.start or cols.stop <= cols.start:
            continue
        xs, ys = _centres(rows, cols)
        rho2 = ((xs - x) ** 2 + (ys - y) ** 2) / (r * r)
        crown = h * (0.55 + 0.45 * np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0)))
        free = (rho2 < 1.0) & (labels[rows, cols] == 0)
        patch = dsm[rows, cols]
        patch[free] = np.maximum(patch[free], dtm[rows, cols][free] + crown[free])
    dsm += rng.normal(0.0, DSM_NOISE, size=dsm.shape)
    return dsm.astype(np.float32)


def write_geotiff(path: Path, data: np.ndarray) -> None:
    """Write a float32 single-band GeoTIFF (tiled 256x256, DEFLATE, nodata -9999)."""
    profile = {
        "driver": "GTiff",
        "width": RASTER_WIDTH,
        "height": RASTER_HEIGHT,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": TRANSFORM,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 3,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32), 1)
