"""floor-count benchmarks.

1. Zonal statistics (p50, p90, max) of 50,000 footprints over a 1 m raster: ours
   (``analysis.zonal.zonal_height_stats``) against ``rasterstats.zonal_stats`` on the same
   footprints and raster, with a breakdown of where our time goes.
2. End-to-end analysis throughput for 100,000 buildings with attribute heights (features,
   height model, explanations, storeys and ranges), one core.

Prints ``name value unit`` lines; ratios as ``..._ratio_vs_<peer> value x``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goals say

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import from_origin

SEED = 7
N_ZONAL = 50_000
PEER_SAMPLE = 2_000
N_BUILDINGS = 100_000
CELL = 22.0  # m: one footprint per grid cell, so footprints never overlap


def make_footprints(n: int, rng: np.random.Generator, x0: float, y0: float) -> np.ndarray:
    side = int(np.ceil(np.sqrt(n)))
    idx = np.arange(n)
    cx = x0 + (idx % side) * CELL + CELL / 2
    cy = y0 - (idx // side) * CELL - CELL / 2
    w = rng.uniform(6, 18, n)
    h = rng.uniform(6, 18, n)
    boxes = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    angles = rng.uniform(0, 30, n)
    return np.array([shapely.affinity.rotate(b, a) for b, a in zip(boxes, angles, strict=True)])


def make_raster(path: Path, footprints: np.ndarray, rng, x0: float, y0: float, size: int,
                tiled: bool = True) -> None:
    """An nDSM: each footprint at its own height plus noise; tiled + DEFLATE like a COG, or
    plain (striped, uncompressed)."""
    transform = from_origin(x0, y0, 1.0, 1.0)
    heights = rng.uniform(3, 30, len(footprints))
    grid = rasterize(
        zip(footprints, heights, strict=True), out_shape=(size, size), transform=transform,
        fill=0.0, dtype="float32",
    )
    grid += rng.normal(0, 0.3, grid.shape).astype("float32")
    layout = ({"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
              if tiled else {})
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
        crs="EPSG:25832", transform=transform, nodata=-9999.0, **layout,
    ) as dst:
        dst.write(grid, 1)


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_zonal(tmp: Path) -> None:
    from rasterstats import zonal_stats

    from cut_processes.analysis import zonal

    rng = np.random.default_rng(SEED)
    x0, y0 = 500_000.0, 5_940_000.0
    fps = make_footprints(N_ZONAL, rng, x0, y0)
    size = int(np.ceil(np.sqrt(N_ZONAL)) * CELL + 2 * CELL)
    print(f"zonal_footprints {N_ZONAL} footprints")
    print(f"zonal_raster_pixels {size * size} px")
    # rasterstats reads one window per footprint: too slow for all 50,000 in a benchmark run,
    # so it runs on a fixed random sample of the same footprints and is scaled linearly.
    sample = np.sort(rng.choice(N_ZONAL, PEER_SAMPLE, replace=False))
    print(f"zonal_peer_sample {PEER_SAMPLE} footprints")
    for layout, tiled in (("cog", True), ("plain", False)):
        path = tmp / f"ndsm_{layout}.tif"
        make_raster(path, fps, np.random.default_rng(SEED), x0 - CELL, y0 + CELL, size, tiled)
        ours_s, ours = timed(lambda path=path: zonal.zonal_height_stats(fps, path), repeats=3)
        print(f"zonal_ours_{layout} {ours_s:.2f} s")
        if layout == "cog":
            _breakdown(zonal, fps, path)
        t0 = time.perf_counter()
        peer = zonal_stats(list(fps[sample]), str(path),
                           stats=["median", "percentile_90", "max"], nodata=-9999.0)
        peer_sample_s = time.perf_counter() - t0
        peer_s = peer_sample_s * N_ZONAL / PEER_SAMPLE
        print(f"zonal_rasterstats_{layout} {peer_s:.1f} s (from {peer_sample_s:.1f} s "
              f"for the sample)")
        print(f"zonal_ours_{layout}_ratio_vs_rasterstats {peer_s / ours_s:.1f} x")
        p50 = np.array([p["median"] if p["median"] is not None else np.nan for p in peer])
        p90 = np.array([p["percentile_90"] if p["percentile_90"] is not None else np.nan
                        for p in peer])
        diff = max(np.nanmax(np.abs(p50 - ours.p50[sample])),
                   np.nanmax(np.abs(p90 - ours.p90[sample])))
        print(f"zonal_{layout}_max_abs_diff_vs_rasterstats {diff:.6f} m")


def _breakdown(zonal, fps: np.ndarray, path: Path) -> None:
    """Where our time goes: the same steps one by one."""
    t0 = time.perf_counter()
    values, transform = zonal._read_heights(path, None, tuple(shapely.total_bounds(fps)))
    t1 = time.perf_counter()
    labels = rasterize(zip(fps, range(1, len(fps) + 1), strict=True), out_shape=values.shape,
                       transform=transform, fill=0, dtype="int32").ravel()
    t2 = time.perf_counter()
    flat = values.ravel()
    inside = (labels > 0) & ~np.isnan(flat)
    lab, val = labels[inside].astype(np.int64), flat[inside]
    t3 = time.perf_counter()
    zonal._aggregate(lab, val, len(fps))
    t4 = time.perf_counter()
    for name, secs in (("read", t1 - t0), ("rasterize", t2 - t1), ("select", t3 - t2),
                       ("sort_reduce", t4 - t3)):
        print(f"zonal_ours_step_{name} {secs:.2f} s")


def bench_end_to_end() -> None:
    from cut_processes.analysis import floors
    from cut_processes.ml.registry import get_model

    rng = np.random.default_rng(SEED)
    n = N_BUILDINGS
    fps = make_footprints(n, rng, 500_000.0, 5_940_000.0)
    storeys = rng.integers(1, 8, n)
    eaves = storeys * rng.uniform(2.8, 3.4, n)
    pitched = rng.random(n) < 0.5
    measured = eaves + np.where(pitched, rng.uniform(2, 6, n), 0)
    records = [{"measured_height": m, "eaves_height": e, "roof_type": "3100" if p else "1000",
                "function": "31001_1000", "year_built": 1960}
               for m, e, p in zip(measured, eaves, pitched, strict=True)]
    model = get_model("floor-count-height")
    classes = np.asarray(model.card.raw["labels"])

    def analysis():
        b = floors.Buildings.from_records(np.arange(n), fps, records)
        x = floors.height_features(b, None)
        out = model.run(x)
        probs = out["probabilities"]
        model.explain(x, top=3, classes=out["label"])
        return floors.storeys_from_probabilities(probs, classes)

    secs, _ = timed(analysis, repeats=3)
    print(f"end_to_end_buildings {n} buildings")
    print(f"end_to_end_buildings_per_s {n / secs:.0f} buildings/s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        bench_zonal(Path(tmp))
    bench_end_to_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
