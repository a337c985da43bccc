"""Zonal height statistics against hand-made rasters and a naive per-footprint reference."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import geometry_mask
from rasterio.transform import from_origin

from cut_processes.analysis.zonal import RasterCoverageError, zonal_height_stats

ORIGIN = (561000.0, 5934000.0)  # upper left, EPSG:25832


def write_raster(path, values, origin=ORIGIN, res=1.0, nodata=-9999.0):
    transform = from_origin(origin[0], origin[1], res, res)
    with rasterio.open(
        path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
        dtype="float32", crs="EPSG:25832", transform=transform, nodata=nodata,
    ) as dst:
        dst.write(values.astype("float32"), 1)
    return path


def test_flat_roofs_give_their_height_exactly(tmp_path):
    grid = np.zeros((100, 100), dtype="float32")
    grid[10:20, 10:30] = 12.0  # rows 10-19, cols 10-29
    grid[50:70, 50:60] = 7.5
    dsm = write_raster(tmp_path / "ndsm.tif", grid)
    x0, y0 = ORIGIN
    a = shapely.box(x0 + 10, y0 - 20, x0 + 30, y0 - 10)
    b = shapely.box(x0 + 50, y0 - 70, x0 + 60, y0 - 50)
    stats = zonal_height_stats(np.array([a, b]), dsm)
    assert stats.p50.tolist() == [12.0, 7.5]
    assert stats.max.tolist() == [12.0, 7.5]
    assert stats.pixels.tolist() == [200, 200]


def test_dsm_minus_dtm(tmp_path):
    ground = np.full((50, 50), 20.0, dtype="float32")
    ground[:, 25:] = 25.0
    surface = ground.copy()
    surface[5:15, 5:15] += 9.0
    surface[5:15, 30:40] += 4.0
    dsm = write_raster(tmp_path / "dsm.tif", surface)
    dtm = write_raster(tmp_path / "dtm.tif", ground)
    x0, y0 = ORIGIN
    fps = np.array([shapely.box(x0 + 5, y0 - 15, x0 + 15, y0 - 5),
                    shapely.box(x0 + 30, y0 - 15, x0 + 40, y0 - 5)])
    stats = zonal_height_stats(fps, dsm, dtm)
    assert stats.p90.tolist() == [9.0, 4.0]


def test_matches_numpy_quantiles_per_footprint(tmp_path):
    rng = np.random.default_rng(3)
    grid = rng.gamma(2.0, 4.0, size=(300, 400)).astype("float32")
    grid[rng.random(grid.shape) < 0.02] = -9999.0  # nodata holes
    dsm = write_raster(tmp_path / "ndsm.tif", grid)
    x0, y0 = ORIGIN
    xs = rng.uniform(x0 + 5, x0 + 360, 200)
    ys = rng.uniform(y0 - 280, y0 - 5, 200)
    fps = np.array([
        shapely.affinity.rotate(shapely.box(x, y, x + w, y + h), ang)
        for x, y, w, h, ang in zip(xs, ys, rng.uniform(3, 30, 200), rng.uniform(3, 15, 200),
                                   rng.uniform(0, 90, 200), strict=True)
    ])
    fps = fps[shapely.within(fps, shapely.box(x0, y0 - 300, x0 + 400, y0))]
    # Non-overlapping subset, so that the reference need not know which footprint wins a pixel.
    keep = []
    for i, fp in enumerate(fps):
        if not any(fp.intersects(fps[j]) for j in keep):
            keep.append(i)
    fps = fps[keep]
    stats = zonal_height_stats(fps, dsm)
    transform = from_origin(x0, y0, 1, 1)
    masked = np.where(grid == -9999.0, np.nan, grid).astype("float64")
    for i, fp in enumerate(fps):
        inside = ~geometry_mask([fp], out_shape=grid.shape, transform=transform)
        vals = masked[inside]
        vals = vals[~np.isnan(vals)]
        assert stats.pixels[i] == vals.size
        if vals.size:
            assert stats.p50[i] == pytest.approx(np.quantile(vals, 0.5), abs=1e-6)
            assert stats.p90[i] == pytest.approx(np.quantile(vals, 0.9), abs=1e-6)
            assert stats.max[i] == pytest.approx(vals.max(), abs=1e-6)
        else:
            assert np.isnan(stats.p50[i])


def test_footprint_without_pixels_gets_nan(tmp_path):
    dsm = write_raster(tmp_path / "ndsm.tif", np.full((20, 20), 5.0))
    x0, y0 = ORIGIN
    tiny = shapely.box(x0 + 2.1, y0 - 2.4, x0 + 2.3, y0 - 2.2)  # covers no pixel centre
    stats = zonal_height_stats(np.array([tiny]), dsm)
    assert stats.pixels.tolist() == [0]
    assert np.isnan(stats.p50[0])


def test_raster_not_covering_the_footprints_is_named(tmp_path):
    dsm = write_raster(tmp_path / "ndsm.tif", np.full((20, 20), 5.0))
    x0, y0 = ORIGIN
    far = shapely.box(x0 + 500, y0 - 500, x0 + 510, y0 - 490)
    with pytest.raises(RasterCoverageError, match="does not overlap"):
        zonal_height_stats(np.array([far]), dsm)
    partly = shapely.box(x0 + 15, y0 - 10, x0 + 25, y0 - 5)
    with pytest.raises(RasterCoverageError, match="1 of 1 footprints"):
        zonal_height_stats(np.array([partly]), dsm)
    stats = zonal_height_stats(np.array([partly]), dsm, require_full_coverage=False)
    assert stats.p50[0] == 5.0


def test_demo_district_heights_match_attributes(demo_dir):
    import fiona

    with fiona.open(demo_dir / "district.gpkg", layer="buildings") as src:
        rows = [(shapely.geometry.shape(f.geometry), f.properties["roof_type"],
                 f.properties["measured_height"]) for f in src]
    flat = [(g, h) for g, roof, h in rows if roof == "1000"]
    fps = np.array([g for g, _ in flat])
    stats = zonal_height_stats(fps, demo_dir / "dsm.tif", demo_dir / "dtm.tif")
    heights = np.array([h for _, h in flat])
    ok = ~np.isnan(stats.p50)
    assert ok.mean() > 0.99
    assert np.median(np.abs(stats.p50[ok] - heights[ok])) < 0.5
