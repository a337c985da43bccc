"""Facade images: which buildings get one, rendering them to PNG, and their hidden labels.

``facades/labels.json`` maps each image id to ``building_id``, ``storeys`` (true),
``has_shop_front``, ``has_attic_storey``, ``window_rows`` (y in pixels of each storey's window
row centre, ground floor first, attic dormers last), ``width`` and ``height`` (pixels),
``ground_y`` (pixels), ``pixels_per_metre`` and ``facade_length_m``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cut_processes.demo import footprints as fp
from cut_processes.demo.buildings import Building
from cut_processes.demo.facade_painter import noise_tile, paint_facade

#: How many facade images the district gets.
FACADE_COUNT = 350

#: Pools the pictures are drawn from: (kinds, only street-facing, minimum storeys, how many).
_POOLS = (
    ((fp.GZ_ROW,), True, 2, 170),
    (
        (fp.MODERN, fp.INTERWAR, fp.POSTWAR_SLAB, fp.TOWER, fp.SCHOOL_BUILDING, fp.OFFICE),
        False,
        2,
        110,
    ),
    ((fp.HOUSE, fp.VILLA, fp.TERRACE), False, 1, 40),
    ((fp.HALL, fp.WORKSHOP, fp.GYM, fp.KITA, fp.GARAGE, fp.PAVILION), False, 1, 30),
)

#: zlib level of the PNGs: fast; the noisy pictures hardly compress better at higher levels.
PNG_COMPRESSION = 2


def select_facades(buildings: list[Building], rng: np.random.Generator) -> None:
    """Set ``facade_image`` (``facade_000001``...) on FACADE_COUNT buildings.

    Mostly street-facing Gründerzeit and other multi-storey buildings, some houses and halls;
    ids follow the building order.
    """
    chosen: set[int] = set()
    for kinds, street_only, min_storeys, wanted in _POOLS:
        pool = [
            i
            for i, b in enumerate(buildings)
            if b.kind in kinds
            and b.storeys >= min_storeys
            and (b.street_class is not None or not street_only)
        ]
        take = min(wanted, len(pool))
        if take:
            chosen.update(rng.choice(pool, size=take, replace=False).tolist())
    rest = [i for i in range(len(buildings)) if i not in chosen]
    missing = min(FACADE_COUNT - len(chosen), len(rest))
    if missing > 0:
        chosen.update(rng.choice(rest, size=missing, replace=False).tolist())
    for k, i in enumerate(sorted(chosen)):
        buildings[i].facade_image = f"facade_{k + 1:06d}"


def write_facades(
    buildings: list[Building], folder: Path, rng: np.random.Generator
) -> tuple[list[Path], dict]:
    """Render every selected facade to ``folder/<id>.png`` and write ``folder/labels.json``.

    Returns the written files and the labels.
    """
    folder.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}
    files: list[Path] = []
    noise = noise_tile(rng)
    for b in buildings:
        if b.facade_image is None:
            continue
        img, label = paint_facade(b, rng, noise)
        path = folder / f"{b.facade_image}.png"
        img.save(path, format="PNG", compress_level=PNG_COMPRESSION)
        labels[b.facade_image] = label
        files.append(path)
    labels_path = folder / "labels.json"
    labels_path.write_text(json.dumps(labels, indent=1, ensure_ascii=False), encoding="utf-8")
    files.append(labels_path)
    return files, labels
