"""Generates the demo district into a folder, atomically, and recognises an existing one.

Everything is derived from one ``numpy.random.default_rng(seed)``, spawned into independent
streams per stage, so the same seed always gives the same attributes and geometries.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from pyproj import Transformer

from cut_processes.demo.buildings import build_buildings
from cut_processes.demo.constants import (
    BBOX,
    CRS,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    LICENCE,
    source_label,
)
from cut_processes.demo.contributions import build_contributions, write_contributions
from cut_processes.demo.cycling import build_cycling, write_cycling
from cut_processes.demo.facades import select_facades, write_facades
from cut_processes.demo.footprints import build_footprints
from cut_processes.demo.layout import DISTRICTS, build_blocks
from cut_processes.demo.rasters import build_dsm, write_geotiff
from cut_processes.demo.streets import build_streets
from cut_processes.demo.terrain import Terrain
from cut_processes.demo.trees import place_trees
from cut_processes.demo.vectors import write_gpkg

LOG = logging.getLogger(__name__)
MANIFEST = "demo.json"


def _bbox_crs84() -> list[float]:
    to_crs84 = Transformer.from_crs(CRS, "OGC:CRS84", always_xy=True)
    return [round(v, 6) for v in to_crs84.transform_bounds(*BBOX)]


def _build(folder: Path, seed: int) -> dict:
    """Generate every file of the district into ``folder``; returns the manifest."""
    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(now - t, 2)
        t = now

    # Child i of spawn() is the same whatever the count: adding streams keeps the others.
    rngs = np.random.default_rng(seed).spawn(11)
    terrain = Terrain.draw(rngs[0])
    grid = build_streets(terrain, rngs[1])
    blocks, added = build_blocks(grid, terrain.hang_line, rngs[2])
    streets = grid.streets + added
    footprints = build_footprints(blocks, rngs[3])
    buildings = build_buildings(footprints, blocks, streets, rngs[4])
    select_facades(buildings, rngs[5])
    contributions = build_contributions(streets, rngs[9])
    cycling = build_cycling(streets, rngs[10])
    lap("vectors")
    trees = place_trees(streets, blocks, buildings, rngs[6])
    dtm = terrain.grid()
    dsm = build_dsm(dtm, buildings, trees, rngs[7])
    lap("rasters")
    source = source_label(seed)
    write_gpkg(folder / "district.gpkg", buildings, streets, source)
    write_contributions(folder / "district.gpkg", contributions, source)
    write_cycling(folder / "district.gpkg", cycling, source)
    write_geotiff(folder / "dtm.tif", dtm)
    write_geotiff(folder / "dsm.tif", dsm)
    lap("write")
    facade_files, _ = write_facades(buildings, folder / "facades", rngs[8])
    lap("facades")
    LOG.info("demo district seed %s generated: %s", seed, timings)

    files = ["district.gpkg", "dtm.tif", "dsm.tif"]
    files += [p.relative_to(folder).as_posix() for p in facade_files]
    manifest = {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "crs": CRS,
        "bbox_25832": list(BBOX),
        "bbox_crs84": _bbox_crs84(),
        "resolution_m": 1.0,
        "counts": {
            "buildings": len(buildings),
            "streets": len(streets),
            "facade_images": sum(b.facade_image is not None for b in buildings),
            "buildings_with_hidden_storeys": sum(b.storeys_published is None for b in buildings),
            "trees": len(trees),
            "contributions": len(contributions),
            "bike_segments": len(cycling.segments),
            "bike_segment_weeks": len(cycling.segment_weeks),
            "bike_routes": len(cycling.routes),
            "bike_stations": len(cycling.stations),
            "bike_counts": len(cycling.counts),
        },
        "districts": {d: sum(b.district == d for b in buildings) for d in DISTRICTS},
        "layers": {
            "district.gpkg": [
                "buildings",
                "streets",
                "buildings_truth",
                "contributions",
                "contributions_truth",
                "bike_segments",
                "bike_segments_truth",
                "bike_routes",
                "bike_stations",
                "bike_counts",
                "bike_truth",
            ],
        },
        "hidden_truth": [
            "district.gpkg#buildings_truth",
            "district.gpkg#contributions_truth",
            "district.gpkg#bike_segments_truth",
            "district.gpkg#bike_truth",
            "facades/labels.json",
        ],
        "files": files,
        "source": "generated",
        "licence": LICENCE,
    }
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing an existing ``target`` folder."""
    for _ in range(3):
        if not target.exists():
            try:
                new.rename(target)
                return
            except OSError:  # another run put a district there meanwhile: replace it
                continue
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        try:
            target.rename(old)
        except FileNotFoundError:
            continue
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"could not move the generated district into {target}")


def generate_district(out_dir: Path, seed: int = 42) -> dict:
    """Generate the demo district into out_dir; returns the manifest dict (also written to
    out_dir/demo.json).

    The district is built in a temporary sibling folder and moved into place at the end, so
    an interrupted run never leaves a partial district behind. An existing ``out_dir`` is
    replaced only when it is empty or holds a previous demo district (``demo.json``).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise NotADirectoryError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise FileExistsError(f"{out_dir} is not empty and holds no demo district")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        os.chmod(work, 0o755)
        manifest = _build(work, int(seed))
        _replace_dir(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def district_exists(out_dir: Path, seed: int) -> bool:
    """True when ``out_dir`` holds a complete district of this ``seed`` and generator version."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    if (
        manifest.get("generator") != GENERATOR_NAME
        or manifest.get("version") != GENERATOR_VERSION
        or manifest.get("seed") != seed
    ):
        return False
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        return False
    return all(isinstance(f, str) and (out_dir / f).is_file() for f in files)
