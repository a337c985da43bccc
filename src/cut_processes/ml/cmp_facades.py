"""The CMP Facade Database as training and evaluation data for storey counting.

The CMP base set (Tyleček & Šára, CTU Prague; research use, cite the GCPR 2013 paper) holds
rectified facade photos ``cmp_bNNNN.jpg`` with an annotation file ``cmp_bNNNN.xml`` each: a
sequence of ``<object>`` elements (no root element, CR line ends) with a ``<labelname>``
(facade, window, door, shop, balcony, sill, cornice, ...) and a box ``<points>`` of two ``<x>``
and two ``<y>`` values. **The ``<x>`` values are vertical (row) coordinates and the ``<y>``
values horizontal (column) ones**, both normalised 0..1 from the top left.

The storey truth is derived from the boxes by :func:`storeys_from_boxes`; the rule is
documented in ``docs/models/floor-count-facade.md``. The fixed train/test split is
:func:`cmp_split`. The data are read from where they lie and never copied into the project.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Where the CMP base set lies relative to the project root (``../shared/data``).
DEFAULT_CMP_DIR = Path("..") / "shared" / "data" / "facades"
#: Boxes whose vertical centres form the storey rows.
ROW_LABELS = frozenset({"window"})
#: Boxes that mark a ground floor (counted once, when below every window row).
GROUND_LABELS = frozenset({"door", "shop"})
#: Two window centres belong to the same row when they are at most this many median window
#: heights apart (1-D single-linkage clustering of the sorted centres).
ROW_GAP = 0.5
#: The fixed split: seed of the permutation of the sorted image names, and test share.
SPLIT_SEED = 20240601
TEST_COUNT = 100


@dataclass(frozen=True)
class Box:
    """One annotated box, in fractions of the picture height (rows) and width (columns)."""

    label: str
    top: float
    bottom: float
    left: float
    right: float

    @property
    def row_centre(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def column_centre(self) -> float:
        return (self.left + self.right) / 2

    @property
    def height(self) -> float:
        return self.bottom - self.top


def read_boxes(xml_path: str | Path) -> list[Box]:
    """The boxes of one CMP annotation file (``<x>`` = rows, ``<y>`` = columns)."""
    text = Path(xml_path).read_bytes().decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # The files are a bare sequence of <object> elements: wrap them to parse them at once.
    root = ET.fromstring(f"<annotation>{text}</annotation>")
    boxes = []
    for obj in root.iter("object"):
        points = obj.find("points")
        label = (obj.findtext("labelname") or "").strip()
        if points is None or not label:
            raise ValueError(f"{xml_path}: <object> without <points> or <labelname>")
        rows = [float(e.text or "nan") for e in points.findall("x")]
        cols = [float(e.text or "nan") for e in points.findall("y")]
        if len(rows) != 2 or len(cols) != 2 or not np.all(np.isfinite(rows + cols)):
            raise ValueError(f"{xml_path}: box of {label!r} needs two <x> and two <y> numbers")
        boxes.append(Box(label, min(rows), max(rows), min(cols), max(cols)))
    return boxes


def window_rows(boxes: list[Box]) -> list[list[Box]]:
    """Windows grouped into rows, top to bottom.

    Vertical centres sorted; a new row starts where the gap to the previous centre exceeds
    :data:`ROW_GAP` x the median window height.
    """
    windows = sorted((b for b in boxes if b.label in ROW_LABELS), key=lambda b: b.row_centre)
    if not windows:
        return []
    centres = np.array([b.row_centre for b in windows])
    gap = ROW_GAP * float(np.median([b.height for b in windows]))
    breaks = np.flatnonzero(np.diff(centres) > gap) + 1
    bounds = [0, *breaks.tolist(), len(windows)]
    return [windows[a:b] for a, b in itertools.pairwise(bounds)]


def storeys_of_facade(boxes: list[Box]) -> int:
    """Storeys of one building: its window rows, plus a ground floor marked by doors/shops.

    A door or shop whose centre lies more than :data:`ROW_GAP` median window heights below
    the centre of the lowest window row adds one storey (once). Without windows, a door or
    shop alone means one storey; nothing at all means 0.
    """
    rows = window_rows(boxes)
    ground = [b for b in boxes if b.label in GROUND_LABELS]
    if not rows:
        return 1 if ground else 0
    lowest = float(np.mean([b.row_centre for b in rows[-1]]))
    gap = ROW_GAP * float(np.median([b.height for row in rows for b in row]))
    has_ground_floor = any(b.row_centre > lowest + gap for b in ground)
    return len(rows) + int(has_ground_floor)


def assign_to_facades(boxes: list[Box]) -> list[tuple[Box, list[Box]]]:
    """The annotated facades, each with the openings that belong to it.

    An opening belongs to the facade whose column range holds its column centre (boxes of
    dormers above a facade box still belong to it); where facade boxes overlap, to the one
    whose row range is nearest. Openings outside every facade's columns (a neighbour's
    windows at the picture edge) belong to none. Without a facade box, the whole picture is
    one facade.
    """
    facades = [b for b in boxes if b.label == "facade"]
    openings = [b for b in boxes if b.label != "facade"]
    if not facades:
        return [(Box("facade", 0.0, 1.0, 0.0, 1.0), openings)]
    members: list[list[Box]] = [[] for _ in facades]
    for box in openings:
        col, row = box.column_centre, box.row_centre
        candidates = [i for i, f in enumerate(facades) if f.left <= col <= f.right]
        if not candidates:
            continue
        best = min(
            candidates, key=lambda i: max(0.0, facades[i].top - row, row - facades[i].bottom)
        )
        members[best].append(box)
    return list(zip(facades, members, strict=True))


def storeys_from_boxes(boxes: list[Box]) -> int:
    """Storey truth of a CMP picture: the largest storey count of its annotated facades."""
    return max(storeys_of_facade(members) for _, members in assign_to_facades(boxes))


@dataclass(frozen=True)
class CmpImage:
    name: str  # "cmp_b0001"
    image_path: Path
    storeys: int
    facades: int  # annotated facade boxes (several buildings when > 1)


def find_cmp_dir(data: str | Path | None = None) -> Path:
    """The folder holding ``cmp_b*.xml`` files: ``data`` or its ``cmp_base`` subfolder.

    Default: ``../shared/data/facades`` relative to the current folder or the project root.
    :raises FileNotFoundError: naming the places looked at.
    """
    if data is not None:
        places = [Path(data)]
    else:
        project_root = Path(__file__).resolve().parents[3]
        places = [DEFAULT_CMP_DIR, project_root / DEFAULT_CMP_DIR]
    looked = []
    for place in places:
        for folder in (place, place / "cmp_base"):
            looked.append(str(folder))
            if folder.is_dir() and any(folder.glob("*.xml")):
                return folder
    raise FileNotFoundError(
        "no CMP-format facade annotations (*.xml next to *.jpg) in: " + ", ".join(looked)
    )


def load_cmp(folder: Path) -> list[CmpImage]:
    """Every annotated picture of a CMP-format folder, sorted by name, with its storeys."""
    images = []
    for xml_path in sorted(folder.glob("*.xml")):
        image_path = next(
            (p for ext in (".jpg", ".jpeg", ".png") if (p := xml_path.with_suffix(ext)).is_file()),
            None,
        )
        if image_path is None:
            continue
        boxes = read_boxes(xml_path)
        facades = sum(b.label == "facade" for b in boxes)
        images.append(CmpImage(xml_path.stem, image_path, storeys_from_boxes(boxes), facades))
    return images


def cmp_split(names: list[str], test_count: int = TEST_COUNT) -> tuple[list[str], list[str]]:
    """The fixed split: names sorted, permuted with :data:`SPLIT_SEED`, the first
    ``test_count`` are the test part. Returns (train, test), each sorted."""
    ordered = sorted(names)
    if len(ordered) <= test_count:
        raise ValueError(f"need more than {test_count} pictures for the split, got {len(ordered)}")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(ordered))
    test = sorted(ordered[i] for i in order[:test_count])
    train = sorted(ordered[i] for i in order[test_count:])
    return train, test
