"""Floor-count analysis functions on hand-made buildings with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from cut_processes.analysis import floors
from cut_processes.analysis.zonal import ZonalStats


def buildings(records, boxes=None):
    boxes = boxes or [shapely.box(0, 0, 10, 20)] * len(records)
    return floors.Buildings.from_records(list(range(len(records))), np.array(boxes), records)


def test_features_follow_the_feature_names_and_mark_missing_values():
    b = buildings([
        {"measured_height": 12.5, "eaves_height": 9.0, "roof_type": "3100",
         "function": "31001_1010", "year_built": 1905},
        {"roof_type": None, "function": "31001_2020"},
    ])
    x = floors.height_features(b, None)
    assert x.dtype == np.float32
    assert x.shape == (2, len(floors.FEATURE_NAMES))
    row = dict(zip(floors.FEATURE_NAMES, x[0].tolist(), strict=True))
    assert row["measured_height"] == 12.5
    assert row["roof_rise"] == pytest.approx(3.5)
    assert row["roof_code"] == 3100
    assert row["roof_flat"] == 0
    assert row["function_group"] == 1
    assert row["function_code"] == 1010
    assert row["footprint_area"] == 200
    assert row["width"] == pytest.approx(10)
    assert row["length"] == pytest.approx(20)
    assert row["raster_p50"] == floors.MISSING
    other = dict(zip(floors.FEATURE_NAMES, x[1].tolist(), strict=True))
    assert other["measured_height"] == floors.MISSING
    assert other["roof_flat"] == floors.MISSING
    assert other["function_group"] == 2


def test_roof_fill_measures_volume_under_a_pitched_roof():
    b = buildings([{"measured_height": 14.0, "eaves_height": 10.0, "roof_type": "3100"}])
    stats = ZonalStats(np.array([12.0]), np.array([13.6]), np.array([14.0]), np.array([200]))
    x = floors.height_features(b, stats)
    row = dict(zip(floors.FEATURE_NAMES, x[0].tolist(), strict=True))
    assert row["roof_fill_p50"] == pytest.approx(0.5)
    assert row["roof_fill_p90"] == pytest.approx(0.9)
    assert row["raster_max"] == 14.0


def test_evidence_variants_blank_one_side_each():
    b = buildings([{"measured_height": 14.0, "eaves_height": 10.0, "roof_type": "3100"}])
    stats = ZonalStats(np.array([12.0]), np.array([13.6]), np.array([14.0]), np.array([200]))
    rows = floors.evidence_variants(floors.height_features(b, stats))
    col = floors.FEATURE_NAMES.index
    assert rows.shape[0] == 3
    assert rows[1, col("raster_p90")] == floors.MISSING and rows[1, col("eaves_height")] == 10
    assert rows[2, col("eaves_height")] == floors.MISSING and rows[2, col("raster_p90")] == 13.6
    assert floors.has_height_evidence(rows).all()


def test_no_height_evidence_is_detected():
    b = buildings([{"roof_type": "1000"}])
    assert not floors.has_height_evidence(floors.height_features(b, None)).any()


def test_storeys_range_covers_ninety_percent():
    classes = np.array([1, 2, 3, 4, 5])
    probs = np.array([
        [0.0, 0.05, 0.9, 0.05, 0.0],  # sure
        [0.0, 0.3, 0.45, 0.25, 0.0],  # spread over 2-4
        [0.6, 0.35, 0.05, 0.0, 0.0],  # edge
    ])
    storeys, confidence, low, high = floors.storeys_from_probabilities(probs, classes)
    assert storeys.tolist() == [3, 3, 1]
    assert confidence.tolist() == pytest.approx([0.9, 0.45, 0.6])
    assert low.tolist() == [3, 2, 1]
    assert high.tolist() == [3, 4, 2]


def test_fusion_multiplies_evidence_and_keeps_single_sides():
    height = np.array([[0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [np.nan] * 3])
    facade = np.array([[0.1, 0.2, 0.7], [np.nan] * 3, [0.1, 0.1, 0.8]])
    fused = floors.fuse(height, facade)
    expected = np.array([0.1 * 0.1, 0.6 * 0.2, 0.3 * 0.7])
    assert fused[0] == pytest.approx(expected / expected.sum(), rel=1e-3)
    assert fused[1].tolist() == height[1].tolist()
    assert fused[2].tolist() == facade[2].tolist()
    # agreeing evidence is surer than either side alone
    agree = floors.fuse(np.array([[0.2, 0.8]]), np.array([[0.3, 0.7]]))
    assert agree[0, 1] > 0.8


def test_shape_of_an_l_shaped_footprint():
    l_shape = shapely.Polygon([(0, 0), (20, 0), (20, 5), (5, 5), (5, 20), (0, 20)])
    shape = floors.footprint_shape(np.array([l_shape, shapely.box(0, 0, 4, 4)]))
    assert shape["footprint_area"].tolist() == [175, 16]
    assert shape["compactness"][1] == pytest.approx(np.pi / 4)
    assert shape["compactness"][0] < shape["compactness"][1]


def test_combine_evidence_per_method():
    nan = [np.nan, np.nan]
    height = np.array([[0.9, 0.1], [0.2, 0.8], nan, nan])
    facade = np.array([[0.6, 0.4], nan, [0.3, 0.7], nan])
    has_height = np.array([True, True, False, False])
    probs, used = floors.combine_evidence("auto", height, facade, has_height)
    assert used.tolist() == ["fusion", "height", "facade", "none"]
    assert probs[1].tolist() == [0.2, 0.8]
    assert probs[0, 0] > 0.9  # agreeing evidence, surer than either
    _, used = floors.combine_evidence("height", height, facade, has_height)
    assert used.tolist() == ["height", "height", "none", "none"]
    _, used = floors.combine_evidence("facade", height, facade, has_height)
    assert used.tolist() == ["facade", "none", "facade", "none"]
    _, used = floors.combine_evidence("fusion", height, facade, has_height)
    assert used.tolist() == ["fusion", "none", "none", "none"]
    _, used = floors.combine_evidence("auto", height, None, has_height)
    assert used.tolist() == ["height", "height", "none", "none"]


def test_floor_summary_counts_agreement_and_floor_area():
    summary = floors.floor_summary(
        footprint_area=np.array([100.0, 200.0, 50.0, 10.0]),
        known_storeys=np.array([3, np.nan, 2, np.nan]),
        estimated=np.array([3, 4, 1, np.nan]),
        used=np.array(["height", "fusion", "height", "none"], dtype=object),
        needs_review=np.array([False, False, True, True]),
    )
    assert summary["per_method"] == {"fusion": 1, "height": 2, "none": 1}
    assert summary["known_storeys"] == 2
    assert summary["agreement_rate"] == 0.5
    assert summary["needs_review"] == 2
    # known storeys count where known: 100*3 + 200*4 + 50*2; the unestimated one adds nothing
    assert summary["gross_floor_area_m2"] == 1200.0
