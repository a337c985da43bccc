"""The shipped height model on the real Hamburg LoD2 excerpts: a report, not a tuning target."""

from __future__ import annotations

from cut_processes.ml.floor_height import hamburg_lod2_report


def test_every_real_building_gets_a_prediction_near_its_storeys(io_shared_data):
    report = hamburg_lod2_report(io_shared_data)
    assert len(report) == 4
    for row in report:
        assert row["storeys_above_ground"] is not None
        assert 1 <= row["predicted"] <= 12
        assert 0 < row["confidence"] <= 1
        # A sanity bound on four buildings; the exact figures are in the docs and the card.
        assert abs(row["predicted"] - row["storeys_above_ground"]) <= 1, row
