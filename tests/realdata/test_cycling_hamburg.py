"""Most-used cycling corridors on Hamburg's six DB Rad+ weeks and the Velorouten."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from cut_processes.analysis import cycling_eval

pytestmark = pytest.mark.realdata

TOP_N = 20


@pytest.fixture(scope="module")
def hamburg(io_shared_data):
    return cycling_eval.analyse_hamburg(io_shared_data, top_n=TOP_N)


def test_six_weeks_and_the_velorouten_are_read(hamburg):
    assert len(hamburg["weeks"]) == 6
    assert all(len(net.ids) > 1000 for net in hamburg["weeks"].values())
    velo, names = hamburg["velorouten"]
    assert len(velo) == len(names) > 50
    xmin, ymin, xmax, ymax = shapely.total_bounds(velo)
    assert 540_000 < xmin < xmax < 600_000 and 5_900_000 < ymin < ymax < 5_960_000  # Hamburg
    # across weeks: every segment once, its volume the mean of the weekly rides
    union = hamburg["all"]
    assert len(np.unique(union.ids)) == len(union.ids)
    assert union.rides.sum() == pytest.approx(
        sum(net.rides.sum() for net in hamburg["weeks"].values()) / 6
    )


@pytest.mark.parametrize("label", [*range(6), cycling_eval.ALL_WEEKS])
def test_corridors_are_continuous_lines_ranked_by_ride_km(hamburg, label):
    weeks = list(hamburg["weeks"])
    key = weeks[label] if isinstance(label, int) else label
    net = hamburg["weeks"].get(key, hamburg["all"])
    corridors = hamburg["results"][key]["corridors"]
    assert [c.rank for c in corridors] == list(range(1, TOP_N + 1))
    ride_km = [c.ride_km for c in corridors]
    assert ride_km == sorted(ride_km, reverse=True) and ride_km[-1] > 0
    length = shapely.length(net.lines)
    seen: set[int] = set()
    for c in corridors:
        assert c.geometry.geom_type == "LineString"
        assert not seen & set(c.segments.tolist())  # a segment is in one corridor at most
        seen |= set(c.segments.tolist())
        # figures recomputed from the network, not from the corridor
        assert c.length_m == pytest.approx(length[c.segments].sum())
        assert c.ride_km == pytest.approx((net.rides * length)[c.segments].sum() / 1000)
        assert c.geometry.length == pytest.approx(c.length_m, rel=1e-3)
        # in order along the line: consecutive segments meet (1 m snapping)
        gaps = shapely.distance(net.lines[c.segments[:-1]], net.lines[c.segments[1:]])
        assert (gaps <= 1.0).all()


def test_velorouten_overlap_and_stability(hamburg):
    report = cycling_eval.report(hamburg)
    json.dumps(report)  # plain values only
    for result in [*report["weeks"].values(), report["all_weeks"]]:
        rows = result["top"]
        assert len(rows) == TOP_N
        assert all(0.0 <= r["share_on_velorouten"] <= 1.0 for r in rows)
        assert 0.0 <= result["top_ride_km_share_on_velorouten"] <= 1.0
        assert 0.0 <= result["network_ride_km_share_on_velorouten"] <= 1.0
        assert result["not_on_velorouten"] == [
            r["rank"] for r in rows if r["share_on_velorouten"] < 0.5
        ]
        named = [r for r in rows if r["share_on_velorouten"] >= 0.5]
        assert all(r["velorouten"] for r in named)  # on a Veloroute: it is named
    # the most-used corridors follow the Velorouten more than the average ride does
    overall = report["all_weeks"]
    assert (
        overall["top_ride_km_share_on_velorouten"] > overall["network_ride_km_share_on_velorouten"]
    )
    stability = report["stability"]
    assert len(stability["pairs"]) == 5
    for pair in stability["pairs"]:
        assert pair["common_segments"] > 1000
        assert -1.0 <= pair["segment_spearman"] <= 1.0
        assert 0.0 <= pair["top_jaccard"] <= 1.0
        assert pair["corridor_spearman"] is not None
    # weeks of one city resemble each other
    assert stability["mean_segment_spearman"] > 0.3
    assert len(stability["weeks_in_weekly_top"]) == TOP_N
    assert max(stability["weeks_in_weekly_top"]) == 6
