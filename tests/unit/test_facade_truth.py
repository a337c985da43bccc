"""Storey truth from CMP-format annotations, on hand-made annotation files.

CMP files are bare ``<object>`` sequences with CR line ends, and ``<x>`` holds the *rows*
(vertical), ``<y>`` the columns. The real files are checked in tests/realdata.
"""

from __future__ import annotations

import random

import pytest

from cut_processes.ml import cmp_facades as cmp

LABEL_CODES = {"facade": 2, "window": 3, "door": 4, "shop": 10, "balcony": 7, "sill": 6}


def cmp_xml(boxes: list[tuple[str, float, float, float, float]]) -> bytes:
    """CMP annotation text for (label, top, bottom, left, right) boxes, as the files are."""
    parts = []
    for label, top, bottom, left, right in boxes:
        parts.append(
            f"<object>\r<points>\r<x>\r{top}\r</x>\r<x>\r{bottom}\r</x>\r"
            f"<y>\r{left}\r</y>\r<y>\r{right}\r</y>\r</points>\r"
            f"<label>\r{LABEL_CODES[label]}\r</label>\r<labelname>\r{label}\r</labelname>\r"
            f"<flag>\r1\r</flag>\r</object>\r"
        )
    return "".join(parts).encode("ascii")


def windows(centres: list[float], columns: list[float], height: float = 0.1, width: float = 0.06):
    """Window boxes at the given row centres and column centres (small jitter in height)."""
    return [
        ("window", c - height / 2 + 0.004 * (j % 2), c + height / 2 + 0.004 * (j % 2),
         col - width / 2, col + width / 2)
        for c in centres for j, col in enumerate(columns)
    ]  # fmt: skip


def storeys(tmp_path, boxes) -> int:
    path = tmp_path / "cmp_b9999.xml"
    path.write_bytes(cmp_xml(boxes))
    return cmp.storeys_from_boxes(cmp.read_boxes(path))


def test_x_is_the_row_and_y_the_column(tmp_path):
    path = tmp_path / "cmp_b0001.xml"
    path.write_bytes(cmp_xml([("window", 0.2, 0.1, 0.9, 0.5)]))  # reversed order on purpose
    [box] = cmp.read_boxes(path)
    assert (box.label, box.top, box.bottom, box.left, box.right) == ("window", 0.1, 0.2, 0.5, 0.9)
    assert box.row_centre == pytest.approx(0.15) and box.column_centre == pytest.approx(0.7)


def test_window_rows_plus_a_ground_floor_with_a_door(tmp_path):
    boxes = [("facade", 0.0, 1.0, 0.0, 1.0), *windows([0.15, 0.35, 0.55], [0.2, 0.4, 0.6, 0.8])]
    boxes += [("door", 0.78, 0.98, 0.45, 0.55), ("balcony", 0.38, 0.42, 0.1, 0.9),
              ("sill", 0.6, 0.61, 0.15, 0.25)]  # fmt: skip
    assert storeys(tmp_path, boxes) == 4  # three window rows + the ground floor


def test_door_beside_ground_floor_windows_adds_nothing(tmp_path):
    boxes = [("facade", 0.0, 1.0, 0.0, 1.0), *windows([0.2, 0.5, 0.85], [0.2, 0.4, 0.8])]
    boxes.append(("door", 0.73, 0.98, 0.55, 0.65))  # centre 0.855: in the lowest row
    boxes.append(("shop", 0.30, 0.34, 0.3, 0.5))  # a sign high up is no ground floor
    assert storeys(tmp_path, boxes) == 3


def test_each_building_is_counted_on_its_own(tmp_path):
    # Left: three rows and shops; right: five rows at other heights. Counting rows across
    # the picture would mix them; the truth is the taller building's count.
    left = windows([0.3, 0.5, 0.7], [0.1, 0.25, 0.4])
    right = windows([0.12, 0.28, 0.44, 0.60, 0.76], [0.6, 0.75, 0.9], height=0.08)
    boxes = [("facade", 0.2, 1.0, 0.0, 0.5), ("facade", 0.0, 1.0, 0.5, 1.0), *left, *right,
             ("shop", 0.82, 0.98, 0.05, 0.45)]  # fmt: skip
    assert storeys(tmp_path, boxes) == 5
    assert len(cmp.window_rows(cmp.read_boxes(tmp_path / "cmp_b9999.xml"))) > 5
    per_facade = [cmp.storeys_of_facade(m) for _, m in cmp.assign_to_facades(
        cmp.read_boxes(tmp_path / "cmp_b9999.xml"))]  # fmt: skip
    assert per_facade == [4, 5]


def test_dormers_above_the_facade_box_count_and_neighbours_do_not(tmp_path):
    boxes = [("facade", 0.3, 1.0, 0.2, 0.8), *windows([0.2, 0.45, 0.7], [0.35, 0.65])]
    boxes += windows([0.1, 0.25, 0.4, 0.55, 0.7, 0.85], [0.05])  # a neighbour at the edge
    assert storeys(tmp_path, boxes) == 3  # dormer row at 0.2 is in the facade's columns


def test_only_doors_or_nothing(tmp_path):
    assert storeys(tmp_path, [("facade", 0, 1, 0, 1), ("door", 0.5, 0.9, 0.4, 0.6)]) == 1
    assert storeys(tmp_path, [("facade", 0, 1, 0, 1)]) == 0


def test_broken_box_is_reported(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_bytes(b"<object><points><x>0.1</x></points><labelname>window</labelname></object>")
    with pytest.raises(ValueError, match="two <x> and two <y>"):
        cmp.read_boxes(path)


def test_split_is_fixed_and_independent_of_order():
    names = [f"cmp_b{i:04d}" for i in range(1, 301)]
    train, test = cmp.cmp_split(names)
    assert len(train) == 200 and len(test) == 100
    assert not set(train) & set(test) and sorted(train + test) == names
    assert train == sorted(train) and test == sorted(test)
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert cmp.cmp_split(shuffled) == (train, test)
    with pytest.raises(ValueError, match="more than 100"):
        cmp.cmp_split(names[:100])


def test_load_cmp_reads_pictures_with_their_truth(tmp_path):
    boxes = [("facade", 0.0, 1.0, 0.0, 1.0), *windows([0.3, 0.6], [0.3, 0.7])]
    (tmp_path / "cmp_b0002.xml").write_bytes(cmp_xml(boxes))
    (tmp_path / "cmp_b0002.jpg").write_bytes(b"")  # only its existence matters here
    (tmp_path / "cmp_b0003.xml").write_bytes(cmp_xml(boxes))  # no picture: left out
    [picture] = cmp.load_cmp(tmp_path)
    assert (picture.name, picture.storeys, picture.facades) == ("cmp_b0002", 2, 1)
    assert cmp.find_cmp_dir(tmp_path) == tmp_path
    with pytest.raises(FileNotFoundError, match="no CMP-format"):
        cmp.find_cmp_dir(tmp_path / "nowhere")
