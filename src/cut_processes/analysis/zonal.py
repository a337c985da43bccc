"""Height statistics of a raster inside many footprints at once (zonal statistics).

The whole input is handled in one pass: read the one raster window that covers all
footprints, burn every footprint's index into a label grid with one ``rasterize`` call, then
aggregate with numpy. Per-footprint quantiles come from a single ``np.sort`` of the pixel
values keyed by footprint (``label * span + value``): sorting values, not indices, and no
Python loop over footprints or pixels.

Pixel membership follows GDAL's default (and rasterstats'): a pixel belongs to a footprint when
its centre lies inside. Where footprints overlap, the later one in the input wins the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window

STAT_NAMES = ("p50", "p90", "max", "pixels")


class RasterCoverageError(ValueError):
    """The raster does not cover (all of) the footprints."""


@dataclass(frozen=True)
class ZonalStats:
    """Per-footprint statistics, NaN where a footprint holds no valid pixel.

    ``p50``, ``p90``, ``max`` in raster units (metres for height rasters); ``pixels`` counts
    the valid pixels inside each footprint.
    """

    p50: np.ndarray
    p90: np.ndarray
    max: np.ndarray
    pixels: np.ndarray

    def as_dict(self, index: int) -> dict[str, float | int | None]:
        def value(arr: np.ndarray) -> float | None:
            v = float(arr[index])
            return None if np.isnan(v) else round(v, 2)

        return {
            "p50": value(self.p50),
            "p90": value(self.p90),
            "max": value(self.max),
            "pixels": int(self.pixels[index]),
        }


def _window_for(dataset: rasterio.io.DatasetReader, bounds: tuple[float, ...]) -> Window:
    """The whole-pixel window covering ``bounds``, clipped to the raster."""
    inverse = ~dataset.transform
    cols, rows = zip(
        *(inverse @ (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])),
        strict=True,
    )
    col0, col1 = max(0, int(np.floor(min(cols)))), min(dataset.width, int(np.ceil(max(cols))))
    row0, row1 = max(0, int(np.floor(min(rows)))), min(dataset.height, int(np.ceil(max(rows))))
    if col1 <= col0 or row1 <= row0:
        raise RasterCoverageError(
            f"the raster {Path(dataset.name).name} (bounds "
            f"{tuple(round(b) for b in dataset.bounds)}) does not overlap the footprints "
            f"(bounds {tuple(round(b) for b in bounds)})"
        )
    return Window(col0, row0, col1 - col0, row1 - row0)


def _read_heights(
    surface: Path, ground: Path | None, bounds: tuple[float, ...]
) -> tuple[np.ndarray, rasterio.Affine]:
    """Heights above ground (or the raster's values) in the window covering ``bounds``."""
    with rasterio.open(surface) as dsm:
        window = _window_for(dsm, bounds)
        values = dsm.read(1, window=window, masked=True).astype("float64")
        transform = dsm.window_transform(window)
        crs = dsm.crs
        if ground is not None:
            with rasterio.open(ground) as dtm:
                if dtm.crs != crs or dtm.res != dsm.res:
                    raise ValueError(
                        f"DSM {surface.name} and DTM {ground.name} differ in CRS or resolution"
                    )
                # The same ground window, located by coordinates (the grids may be offset).
                left, top = transform.c, transform.f
                row, col = dtm.index(left + dsm.res[0] / 2, top - dsm.res[1] / 2)
                terrain = dtm.read(
                    1,
                    window=Window(col, row, values.shape[1], values.shape[0]),
                    masked=True,
                    boundless=True,
                ).astype("float64")
                values = values - terrain
    return np.ma.filled(values, np.nan), transform


def zonal_height_stats(
    footprints: np.ndarray,
    surface: str | Path,
    ground: str | Path | None = None,
    *,
    require_full_coverage: bool = True,
) -> ZonalStats:
    """p50, p90 and max of ``surface`` (minus ``ground`` when given) inside each footprint.

    :param footprints: shapely Polygons/MultiPolygons in the raster's CRS (metres).
    :param surface: a GeoTIFF/COG: an nDSM (heights above ground), or a DSM with ``ground``.
    :param ground: optional DTM on the same grid; heights are then ``surface - ground``.
    :param require_full_coverage: raise :class:`RasterCoverageError` when a footprint lies
        outside the raster, naming how many and the first index; otherwise they get NaN.
    """
    footprints = np.asarray(footprints, dtype=object)
    n = len(footprints)
    if n == 0:
        empty = np.empty(0)
        return ZonalStats(empty, empty, empty, np.empty(0, dtype=np.int64))
    bounds = tuple(shapely.total_bounds(footprints))
    surface_path = Path(surface)
    values, transform = _read_heights(
        surface_path, Path(ground) if ground is not None else None, bounds
    )
    if require_full_coverage:
        _check_coverage(footprints, surface_path)

    labels = rasterize(
        zip(footprints, range(1, n + 1), strict=True),
        out_shape=values.shape,
        transform=transform,
        fill=0,
        dtype="int32",
    ).ravel()
    flat = values.ravel()
    inside = (labels > 0) & ~np.isnan(flat)
    labels = labels[inside].astype(np.int64)
    flat = flat[inside]
    return _aggregate(labels, flat, n)


def _check_coverage(footprints: np.ndarray, surface: Path) -> None:
    with rasterio.open(surface) as src:
        box = shapely.box(*src.bounds)
    outside = ~shapely.within(footprints, box)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise RasterCoverageError(
            f"{int(outside.sum())} of {len(footprints)} footprints lie (partly) outside the "
            f"raster {surface.name}; the first is number {first}"
        )


def _aggregate(labels: np.ndarray, values: np.ndarray, n: int) -> ZonalStats:
    """Group quantiles by one sort of ``label * span + (value - low)``."""
    counts = np.bincount(labels, minlength=n + 1)[1:]
    p50 = np.full(n, np.nan)
    p90 = np.full(n, np.nan)
    vmax = np.full(n, np.nan)
    if values.size == 0:
        return ZonalStats(p50, p90, vmax, counts)
    low = values.min()
    span = float(values.max() - low) + 1.0
    keys = labels.astype(np.float64) * span + (values - low)
    keys.sort(kind="quicksort")
    sorted_values = keys - np.repeat(np.arange(1, n + 1, dtype=np.float64) * span, counts) + low

    has = counts > 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    for out, q in ((p50, 0.5), (p90, 0.9)):
        # numpy's default "linear" quantile: between the two neighbouring order statistics.
        pos = q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, counts[has] - 1)
        frac = pos - lo
        base = starts[has]
        out[has] = sorted_values[base + lo] * (1 - frac) + sorted_values[base + hi] * frac
    vmax[has] = sorted_values[starts[has] + counts[has] - 1]
    return ZonalStats(p50, p90, vmax, counts)
