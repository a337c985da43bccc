"""Cycling network analysis on hand-made networks with known answers."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import shapely
from scipy.stats import t as student_t
from shapely.geometry import LineString, MultiLineString, Point, Polygon

from cut_processes.analysis import cycling_network as cn
from cut_processes.io.inputs import InputProblem

X0, Y0 = 565_000.0, 5_935_000.0  # Hamburg in EPSG:25832
with np.errstate(invalid="ignore"):
    NAN_LINE = shapely.linestrings([[X0, Y0], [math.nan, Y0]])


def line(*xy: tuple[float, float]) -> LineString:
    return LineString([(X0 + x, Y0 + y) for x, y in xy])


def arm(start: tuple[float, float], end: tuple[float, float], pieces: int) -> list[LineString]:
    """A straight street from ``start`` to ``end`` cut into ``pieces`` segments."""
    xs = np.linspace(start[0], end[0], pieces + 1)
    ys = np.linspace(start[1], end[1], pieces + 1)
    return [line((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(pieces)]


# --- corridors ---------------------------------------------------------------------------------


def cross(heavy: float = 100.0, light: float = 20.0):
    """West-east street (4 x 100 m, ``heavy``) crossing a north-south street (``light``)."""
    we = arm((-200, 0), (0, 0), 2) + arm((0, 0), (200, 0), 2)
    ns = arm((0, -200), (0, 0), 2) + arm((0, 0), (0, 200), 2)
    return np.array(we + ns, dtype=object), np.array([heavy] * 4 + [light] * 4)


def test_cross_heavy_straight_line_is_the_top_corridor():
    lines, volume = cross()
    corridors = cn.build_corridors(lines, volume, top_n=5)
    top = corridors[0]
    assert top.rank == 1
    assert top.geometry.geom_type == "LineString"
    assert top.geometry.equals(line((-200, 0), (200, 0)))
    assert sorted(top.segments.tolist()) == [0, 1, 2, 3]
    assert top.segments.tolist() in ([0, 1, 2, 3], [3, 2, 1, 0])  # in order along the line
    assert top.length_m == pytest.approx(400.0)
    assert top.ride_km == pytest.approx(100 * 400 / 1000)
    assert (top.volume_mean, top.volume_min, top.volume_max) == (100.0, 100.0, 100.0)
    # the crossing street is the second corridor, not joined into the first
    assert sorted(corridors[1].segments.tolist()) == [4, 5, 6, 7]
    assert corridors[1].ride_km == pytest.approx(20 * 400 / 1000)
    assert len(corridors) == 2


def test_corridor_does_not_turn_at_a_junction():
    # heavy flow comes from the west and turns north; straight on is the stroke
    we = arm((-200, 0), (0, 0), 2) + arm((0, 0), (200, 0), 2)
    ns = arm((0, -200), (0, 0), 2) + arm((0, 0), (0, 200), 2)
    lines = np.array(we + ns, dtype=object)
    volume = np.array([100, 100, 30, 30, 30, 30, 100, 100.0])
    corridors = cn.build_corridors(lines, volume, top_n=None, volume_weight_deg=0.0)
    for c in corridors:
        coords = shapely.get_coordinates(c.geometry)
        assert np.ptp(coords[:, 0]) == 0 or np.ptp(coords[:, 1]) == 0  # straight, no L
    assert [sorted(c.segments.tolist()) for c in corridors] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_t_junction_main_road_continues_side_road_separate():
    main = [*arm((-300, 0), (0, 0), 3), line((0, 0), (100, 40)), line((100, 40), (200, 80))]
    side = arm((0, 0), (0, -150), 2)
    lines = np.array(main + side, dtype=object)
    volume = np.array([60.0] * 5 + [80.0, 80.0])
    corridors = cn.build_corridors(lines, volume, top_n=None)
    # the main road bends by 21.8° at the junction: within the 40° limit, so one corridor
    first = corridors[0]
    assert sorted(first.segments.tolist()) == [0, 1, 2, 3, 4]
    length = 300 + 2 * math.hypot(100, 40)
    assert first.length_m == pytest.approx(length)
    assert first.ride_km == pytest.approx(60 * length / 1000)
    assert sorted(corridors[1].segments.tolist()) == [5, 6]
    # with a tighter limit the bend breaks the main road at the junction
    tight = cn.build_corridors(lines, volume, top_n=None, max_deflection_deg=15.0)
    assert sorted(map(sorted, (c.segments.tolist() for c in tight))) == [[0, 1, 2], [3, 4], [5, 6]]


def test_plain_vertex_continues_around_a_sharp_bend_but_not_a_hairpin():
    lines = np.array([line((0, 0), (100, 0)), line((100, 0), (100, 100))], dtype=object)
    corridors = cn.build_corridors(lines, [50, 50])
    assert len(corridors) == 1
    assert corridors[0].geometry.equals(line((0, 0), (100, 0), (100, 100)))
    # two sides of a dual carriageway meeting at a dead end: a 160° turn, not one corridor
    hairpin = np.array([line((0, 0), (300, 0)), line((300, 0), (0, 106))], dtype=object)
    assert len(cn.build_corridors(hairpin, [50, 50])) == 2
    assert len(cn.build_corridors(hairpin, [50, 50], max_bend_deg=170, min_straightness=0)) == 1


def test_chain_folding_back_is_cut():
    # two parallel streets 30 m apart, linked at one end by a 30 m connector: two right-angle
    # bends at plain vertices, each allowed, together a U
    lines = np.array(
        [*arm((0, 0), (300, 0), 3), line((300, 0), (300, 30)), *arm((300, 30), (0, 30), 3)],
        dtype=object,
    )
    volume = np.array([40.0] * 3 + [30.0] + [20.0] * 3)
    u_shape = cn.build_corridors(lines, volume, min_volume=0, min_straightness=0)
    assert len(u_shape) == 1 and u_shape[0].length_m == pytest.approx(630)
    corridors = cn.build_corridors(lines, volume, top_n=None, min_volume=0)
    assert [sorted(c.segments.tolist()) for c in corridors] == [[0, 1, 2], [4, 5, 6], [3]]
    # a right-angle corner is no fold
    corner = np.array([*arm((0, 0), (300, 0), 3), *arm((300, 0), (300, 300), 3)], dtype=object)
    assert len(cn.build_corridors(corner, [40.0] * 6)) == 1


def test_volume_term_picks_the_branch_that_carries_the_flow():
    # at a fork both branches deflect by the same angle; the flow continues where volumes match
    stem = line((-100, 0), (0, 0))
    left = line((0, 0), (100, 36.4))
    right = line((0, 0), (100, -36.4))
    lines = np.array([stem, left, right], dtype=object)
    for volume, joined in (([100, 30, 95], [0, 2]), ([100, 95, 30], [0, 1])):
        corridors = cn.build_corridors(lines, volume, top_n=None, min_volume=0)
        assert sorted(corridors[0].segments.tolist()) == joined
        assert len(corridors) == 2  # the other branch stays on its own


def test_endpoints_within_tolerance_snap_to_one_node():
    near = np.array([line((0, 0), (100, 0)), line((100.5, 0.3), (200, 0))], dtype=object)
    joined = cn.build_corridors(near, [40, 40])
    assert len(joined) == 1 and joined[0].geometry.geom_type == "LineString"
    assert joined[0].length_m == pytest.approx(100 + math.hypot(99.5, 0.3))
    apart = np.array([line((0, 0), (100, 0)), line((102, 0), (200, 0))], dtype=object)
    assert len(cn.build_corridors(apart, [40, 40])) == 2
    assert len(cn.build_corridors(apart, [40, 40], snap_tolerance_m=3.0)) == 1


def test_quiet_segment_breaks_a_corridor_and_ranking_is_by_ride_km():
    lines = np.array(arm((0, 0), (500, 0), 5) + arm((0, 300), (100, 300), 1), dtype=object)
    volume = np.array([30, 30, 5, 30, 30, 200.0])
    corridors = cn.build_corridors(lines, volume, min_volume=10, top_n=None)
    # the 100 m at 200 rides (20 ride-km) beats each 200 m half at 30 rides (6 ride-km)
    assert [sorted(c.segments.tolist()) for c in corridors] == [[5], [0, 1], [3, 4]]
    assert [c.ride_km for c in corridors] == pytest.approx([20.0, 6.0, 6.0])
    assert [c.rank for c in corridors] == [1, 2, 3]
    assert all(2 not in c.segments for c in corridors)  # below min_volume: in no corridor
    assert len(cn.build_corridors(lines, volume, min_volume=10, top_n=2)) == 2


def test_corridor_statistics_are_length_weighted_and_names_by_length():
    lines = np.array([line((0, 0), (300, 0)), line((300, 0), (400, 0))], dtype=object)
    corridor = cn.build_corridors(lines, [10, 50], names=["Elbchaussee", "Große Elbstraße"])[0]
    assert corridor.volume_mean == pytest.approx((10 * 300 + 50 * 100) / 400)
    assert (corridor.volume_min, corridor.volume_max) == (10, 50)
    assert corridor.names == ["Elbchaussee", "Große Elbstraße"]
    props = corridor.properties()
    assert props["length_m"] == 400.0 and props["segment_count"] == 2


def test_default_min_volume_is_the_length_weighted_median():
    # 900 m at 5 rides, 100 m at 50: the median is 5, so all segments take part
    lines = np.array(arm((0, 0), (900, 0), 9) + arm((900, 0), (1000, 0), 1), dtype=object)
    corridors = cn.build_corridors(lines, [5] * 9 + [50])
    assert len(corridors) == 1 and len(corridors[0].segments) == 10
    # 100 m at 5 rides and 900 m at 50: the 5-ride segment stays out
    corridors = cn.build_corridors(lines, [50] * 9 + [5])
    assert sorted(corridors[0].segments.tolist()) == list(range(9))


# --- bad input ---------------------------------------------------------------------------------


def test_segment_without_geometry_is_named():
    lines = np.array([line((0, 0), (100, 0)), None], dtype=object)
    with pytest.raises(InputProblem) as err:
        cn.check_segments(lines, [5, 5], ids=["a", "b"])
    assert err.value.input_name == "segments"
    assert "no geometry" in err.value.problem and "'b'" in err.value.problem
    with pytest.raises(InputProblem, match="no geometry"):
        cn.build_corridors(lines, [5, 5])


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        (Point(X0, Y0), "a Point, not a line"),
        (Polygon([(X0, Y0), (X0 + 10, Y0), (X0, Y0 + 10)]), "a Polygon, not a line"),
        (LineString([(X0, Y0), (X0, Y0)]), "zero length"),
        (LineString(), "no geometry"),
        (NAN_LINE, "non-finite coordinates"),
    ],
)
def test_unusable_geometries_are_named_or_dropped(geometry, reason):
    lines = np.array([line((0, 0), (100, 0)), geometry, line((100, 0), (200, 0))], dtype=object)
    with pytest.raises(InputProblem) as err:
        cn.check_segments(lines, [5, 6, 7], ids=["s1", "s2", "s3"])
    assert reason in err.value.problem and "'s2' (feature 1)" in err.value.problem
    checked = cn.check_segments(lines, [5, 6, 7], ids=["s1", "s2", "s3"], repair=True)
    assert checked.ids == ["s1", "s3"] and checked.index.tolist() == [0, 2]
    assert checked.volume.tolist() == [5, 7]
    assert checked.dropped == [("segment 's2' (feature 1)", reason)]


def test_multilinestring_merged_or_split_and_reported():
    joined = MultiLineString([[(X0, Y0), (X0 + 50, Y0)], [(X0 + 50, Y0), (X0 + 90, Y0)]])
    split = MultiLineString(
        [[(X0, Y0 + 10), (X0 + 50, Y0 + 10)], [(X0 + 60, Y0 + 10), (X0 + 90, Y0 + 10)]]
    )
    checked = cn.check_segments(np.array([joined]), [9])
    assert checked.lines[0].geom_type == "LineString" and checked.lines[0].length == 90
    assert checked.repaired == [("segment 0", "MultiLineString merged into a line")]
    with pytest.raises(InputProblem, match="MultiLineString of disconnected parts"):
        cn.check_segments(np.array([joined, split]), [9, 4])
    checked = cn.check_segments(np.array([joined, split]), [9, 4], repair=True)
    assert checked.index.tolist() == [0, 1, 1]
    assert checked.volume.tolist() == [9, 4, 4]
    assert "split into 2 lines" in checked.repaired[1][1]


def test_mixed_crs_is_named():
    degrees = LineString([(9.99, 53.55), (9.991, 53.551)])
    lines = np.array([line((0, 0), (100, 0)), degrees, line((100, 0), (200, 0))], dtype=object)
    with pytest.raises(InputProblem, match=r"mixed CRS.*segment 1"):
        cn.build_corridors(lines, [5, 5, 5])
    checked = cn.check_segments(lines, [5, 5, 5], repair=True)
    assert checked.index.tolist() == [0, 2] and "mixed CRS" in checked.dropped[0][1]


def test_all_degrees_is_refused():
    lines = np.array([LineString([(9.99, 53.55), (9.9901, 53.5501)])] * 3, dtype=object)
    with pytest.raises(InputProblem, match="degrees"):
        cn.build_corridors(lines, [5, 5, 5])


@pytest.mark.parametrize("bad", [-1, "many", None, math.nan, math.inf, True])
def test_bad_volumes_are_named(bad):
    lines = np.array(arm((0, 0), (200, 0), 2), dtype=object)
    with pytest.raises(InputProblem) as err:
        cn.build_corridors(lines, [5, bad])
    assert err.value.input_name == "volumes"
    assert "segment 1" in err.value.problem and repr(bad) in err.value.problem


def test_bad_parameters_are_named():
    lines, volume = cross()
    with pytest.raises(InputProblem) as err:
        cn.build_corridors(lines, volume, top_n=0)
    assert err.value.input_name == "top_n"
    with pytest.raises(InputProblem) as err:
        cn.build_corridors(lines, volume, max_deflection_deg=-5)
    assert err.value.input_name == "max_deflection_deg"
    with pytest.raises(InputProblem) as err:
        cn.build_corridors(lines, volume[:3])
    assert "3 volumes for 8 segments" in err.value.problem


# --- stations ----------------------------------------------------------------------------------


def test_match_stations_nearest_within_reach():
    lines = np.array([line((0, 0), (100, 0)), line((0, 30), (100, 30))], dtype=object)
    points = np.array(
        [
            Point(X0 + 50, Y0 + 4),
            Point(X0 + 50, Y0 + 20),
            Point(X0 + 50, Y0 + 90),
            Point(X0 + 50, Y0 + 15),
        ]
    )
    index, distance = cn.match_stations(points, lines)
    assert index.tolist() == [0, 1, -1, 0]  # the last one is a tie: lowest index
    assert distance[:2].tolist() == [4.0, 10.0] and math.isnan(distance[2])
    index, _ = cn.match_stations(points, lines, max_distance_m=5)
    assert index.tolist() == [0, -1, -1, -1]


def test_match_stations_with_bearing_prefers_the_aligned_street():
    # a station 3 m from an east-west street and 8 m from a north-south one, counting N-S
    lines = np.array([line((-100, 0), (100, 0)), line((11, -100), (11, 100))], dtype=object)
    points = np.array([Point(X0 + 3, Y0 + 3)] * 3)
    index, distance = cn.match_stations(points, lines, bearings_deg=[0.0, 270.0, math.nan])
    assert index.tolist() == [1, 0, 0]
    assert distance.tolist() == [8.0, 3.0, 3.0]


def test_match_stations_bad_input():
    lines = np.array([line((0, 0), (100, 0))], dtype=object)
    with pytest.raises(InputProblem) as err:
        cn.match_stations(np.array([Point(9.99, 53.55)]), lines)
    assert err.value.input_name == "stations" and "different CRS" in err.value.problem
    with pytest.raises(InputProblem, match=r"Point geometries.*station 1"):
        cn.match_stations(np.array([Point(X0, Y0), line((0, 0), (1, 1))]), lines)
    with pytest.raises(InputProblem) as err:
        cn.match_stations(np.array([Point(X0, Y0)]), lines, max_distance_m=0)
    assert err.value.input_name == "max_distance_m"


# --- calibration -------------------------------------------------------------------------------


def test_calibration_recovers_known_factors_per_road_class():
    rides = np.array([70, 140, 210, 280, 70, 140, 210, 280, 35, 700, 7.0])
    classes = ["primary"] * 4 + ["residential"] * 4 + ["secondary", "primary", None]
    factor = {"primary": 2.0, "residential": 5.0, "secondary": 3.0}
    stations = [(f"s{i}", i, factor[classes[i]] * rides[i] / 7) for i in range(9)]
    cal = cn.calibrate(rides, stations, road_class=classes)
    assert cal.factors_by_class == pytest.approx({"primary": 2.0, "residential": 5.0})
    ratios = [2.0] * 4 + [5.0] * 4 + [3.0]
    assert cal.global_factor == pytest.approx(float(np.exp(np.median(np.log(ratios)))))
    # 8 of 9 stations are predicted exactly without themselves (3 of their class remain)
    assert cal.log_spread == pytest.approx(0.0)
    expected = np.array([2.0] * 4 + [5.0] * 4 + [cal.global_factor, 2.0, cal.global_factor])
    assert cal.cyclists_estimated == pytest.approx(expected * rides / 7)
    assert cal.calibration.tolist() == [cn.ROAD_CLASS_FACTOR] * 8 + [
        cn.GLOBAL_FACTOR,
        cn.ROAD_CLASS_FACTOR,
        cn.GLOBAL_FACTOR,
    ]
    # without spread between stations the interval is the Poisson noise of the rides alone,
    # at Student's t quantile with 9 - 1 degrees of freedom
    t = student_t.ppf(0.9, 8)
    est = cal.cyclists_estimated
    assert cal.cyclists_high[9] == pytest.approx(est[9] * math.exp(t / math.sqrt(700)))
    assert cal.cyclists_low[10] == pytest.approx(est[10] * math.exp(-t / math.sqrt(7)))
    assert cal.relative_volume == pytest.approx(rides / np.median(rides))


def test_calibration_median_resists_a_station_on_the_wrong_segment():
    rides = np.full(6, 70.0)
    stations = [(f"s{i}", i, 30.0) for i in range(5)] + [("wrong", 5, 1000.0)]
    cal = cn.calibrate(rides, stations)
    assert cal.global_factor == pytest.approx(3.0)
    assert (cal.calibration == cn.GLOBAL_FACTOR).all()


def test_calibration_spread_gives_the_interval():
    rides = np.array([70.0, 70.0, 70.0, 70.0])
    stations = [("a", 0, 10.0), ("b", 1, 20.0), ("c", 2, 40.0)]  # ratios 1, 2, 4
    cal = cn.calibrate(rides, stations)
    assert cal.global_factor == pytest.approx(2.0)
    # leave-one-out: a from (2, 4): sqrt(8), off by 1.5 ln 2; b from (1, 4): 2, exact;
    # c from (1, 2): sqrt(2), off by 1.5 ln 2. The median absolute error is 1.5 ln 2, less the
    # Poisson noise of the stations' own 70 rides (added back per segment)
    spread = math.sqrt((1.4826 * 1.5 * math.log(2)) ** 2 - 1 / 70)
    assert cal.log_spread == pytest.approx(spread)
    half = student_t.ppf(0.9, 2) * math.sqrt(spread**2 + 1 / 70)
    assert cal.cyclists_estimated[3] == pytest.approx(20.0)
    assert cal.cyclists_low[3] == pytest.approx(20.0 * math.exp(-half))
    assert cal.cyclists_high[3] == pytest.approx(20.0 * math.exp(half))
    # two stations: no spread of their own, the prior at the normal quantile
    two = cn.calibrate(rides, stations[:2])
    half = NormalDist().inv_cdf(0.9) * math.sqrt(cn.PRIOR_LOG_SPREAD**2 + 1 / 70)
    assert two.cyclists_high[3] == pytest.approx(two.cyclists_estimated[3] * math.exp(half))


def test_no_matched_station_gives_relative_volume_only():
    rides = np.array([10.0, 20.0, 40.0])
    cal = cn.calibrate(rides, [("far", -1, 100.0), ("zero", 1, 0.0)])
    assert (cal.calibration == cn.NO_CALIBRATION).all()
    assert np.isnan(cal.cyclists_estimated).all() and np.isnan(cal.cyclists_high).all()
    assert cal.relative_volume.tolist() == [0.5, 1.0, 2.0]
    assert [s for s, _ in cal.excluded] == ["far", "zero"]
    assert cal.summary()["stations_used"] == 0
    assert cal.leave_one_station_out()["summary"]["n"] == 0


def test_calibration_excludes_unusable_stations_and_refuses_bad_rows():
    rides = np.array([0.0, 70.0])
    cal = cn.calibrate(rides, [("no rides", 0, 50.0), ("ok", 1, 20.0)])
    assert [s["station_id"] for s in cal.stations] == ["ok"]
    assert cal.excluded == [("no rides", "its segment has no crowdsourced rides")]
    with pytest.raises(InputProblem, match=r"segment index 5 outside 0\.\.1"):
        cn.calibrate(rides, [("x", 5, 20.0)])
    with pytest.raises(InputProblem) as err:
        cn.calibrate([1, -2], [])
    assert err.value.input_name == "segments"


def test_leave_one_station_out_by_hand():
    rides = np.array([70.0, 70.0, 70.0])
    cal = cn.calibrate(rides, [("a", 0, 20.0), ("b", 1, 40.0), ("c", 2, 80.0)])  # 2, 4, 8
    loso = cal.leave_one_station_out()
    rows = {r["station_id"]: r for r in loso["stations"]}
    # without a: median of ratios 4 and 8 in log space = sqrt(32)
    assert rows["a"]["predicted_per_day"] == pytest.approx(math.sqrt(32) * 10)
    assert rows["a"]["error_pct"] == pytest.approx(100 * (math.sqrt(32) * 10 - 20) / 20)
    assert rows["b"]["predicted_per_day"] == pytest.approx(math.sqrt(16) * 10)
    assert rows["b"]["error_pct"] == pytest.approx(0.0)
    errors = sorted(abs(r["error_pct"]) for r in rows.values())
    assert loso["summary"]["median_abs_error_pct"] == pytest.approx(errors[1])
    assert loso["summary"]["n"] == 3


def test_leave_one_station_out_recovers_exact_class_factors():
    rides = np.arange(1, 9, dtype=float) * 70
    classes = ["primary"] * 4 + ["residential"] * 4
    stations = [(i, i, (2.0 if i < 4 else 5.0) * rides[i] / 7) for i in range(8)]
    loso = cn.calibrate(rides, stations, road_class=classes).leave_one_station_out()
    assert all(r["calibration"] == cn.ROAD_CLASS_FACTOR for r in loso["stations"])
    assert [r["error_pct"] for r in loso["stations"]] == pytest.approx([0.0] * 8)
    assert loso["summary"]["interval_coverage"] == 1.0


# --- official network and stability ------------------------------------------------------------


def test_official_overlap_of_a_known_geometry():
    lines = np.array(arm((0, 0), (1000, 0), 10) + arm((0, 500), (500, 500), 5), dtype=object)
    volume = np.array([50.0] * 10 + [100.0] * 5)
    corridors = cn.build_corridors(lines, volume, top_n=None)
    assert [c.ride_km for c in corridors] == pytest.approx([50.0, 50.0])
    official = [line((0, 10), (400, 10)), line((-50, 500), (600, 500))]  # 10 m off, 400 m
    overlap = cn.official_overlap(corridors, official, official_names=["VR 1", "VR 2"])
    rows = {tuple(sorted(r["official_names"])): r for r in overlap["corridors"]}
    first = rows[("VR 1",)]
    # the route's 20 m buffer (round cap) reaches sqrt(20² - 10²) m beyond its end along the
    # street 10 m away: 417.3 m of the 1000 m street are on it
    on = 400 + math.sqrt(300)
    assert first["share_on_official"] == pytest.approx(on / 1000, abs=5e-4)
    assert first["ride_km_on_official"] == pytest.approx(50 * on / 1000, abs=0.03)
    assert rows[("VR 2",)]["share_on_official"] == pytest.approx(1.0)
    assert overlap["ride_km_share_on_official"] == pytest.approx(
        (50 * on / 1000 + 50) / 100, abs=5e-4
    )
    assert [r["rank"] for r in overlap["not_on_official"]] == [first["rank"]]
    assert overlap["length_share_on_official"] == pytest.approx((on + 500) / 1500, abs=5e-4)


def test_official_overlap_bad_input():
    corridors = cn.build_corridors(np.array([line((0, 0), (100, 0))]), [5])
    with pytest.raises(InputProblem, match=r"official_routes.*feature 1"):
        cn.official_overlap(corridors, [line((0, 0), (10, 0)), Point(X0, Y0)])
    with pytest.raises(InputProblem, match="without geometry"):
        cn.official_overlap(corridors, [None])


def test_rank_stability_identical_and_reversed_weeks():
    week = {f"s{i}": float(v) for i, v in enumerate([5, 9, 14, 30, 12])}
    same = cn.rank_stability(
        {"2023-01-02": week, "2023-01-09": dict(week), "2023-01-16": dict(week)},
        top_sets={"2023-01-02": {"s3", "s2"}, "2023-01-09": {"s3", "s2"}, "2023-01-16": {"s3"}},
        segment_lengths={"s2": 100.0, "s3": 300.0},
        corridors=[{"s0", "s1"}, {"s3"}, {"s2", "s4"}],
    )
    assert same["mean_segment_spearman"] == pytest.approx(1.0)
    assert [p["top_jaccard"] for p in same["pairs"]] == pytest.approx([1.0, 300 / 400])
    assert same["mean_corridor_spearman"] == pytest.approx(1.0)
    assert same["corridor_volume_by_week"]["2023-01-02"] == pytest.approx([14, 9000, 1412])
    reversed_week = {s: -v for s, v in week.items()}
    reversed_week = {s: v - min(reversed_week.values()) for s, v in reversed_week.items()}
    opposite = cn.rank_stability({"a": week, "b": reversed_week, "c": {"s0": 1.0}})
    assert opposite["pairs"][0]["segment_spearman"] == pytest.approx(-1.0)
    assert opposite["pairs"][1]["common_segments"] == 1
    assert opposite["pairs"][1]["segment_spearman"] is None


def test_rank_stability_bad_input():
    with pytest.raises(InputProblem, match="at least 2 weeks"):
        cn.rank_stability({"a": {"s": 1.0}})
    with pytest.raises(InputProblem, match=r"weeks\[b\]"):
        cn.rank_stability({"a": {"s": 1.0}, "b": {"s": "x"}})


def test_calibration_interval_covers_as_promised_on_simulated_stations():
    from cut_processes.analysis.cycling_eval import simulate_calibration

    rides = np.random.default_rng(3).lognormal(np.log(20), 0.6, 2_000).round() + 8
    check = simulate_calibration(rides, repeats=40, noise_log_sd=0.3)
    assert 0.7 <= check["interval_coverage"] <= 0.9  # nominal 0.8
    assert 10 < check["median_abs_error_pct"] < 60


def test_demo_district_leave_one_station_out(demo_dir):
    from cut_processes.analysis.cycling_eval import evaluate_demo

    check = evaluate_demo(demo_dir)
    assert len(check["weeks"]) == 3
    assert all(w["stations_used"] == 8 for w in check["weeks"].values())  # all matched
    assert len(check["loso_stations"]) == 24
    # generated truth: the estimates are within a factor of about 1.3 for half the segments
    assert check["segments_median_abs_error_pct"] < 35
    assert 0.6 <= check["segments_interval_coverage"] <= 0.97
    assert 0.6 <= check["loso_interval_coverage"] <= 0.97


def test_segments_shorter_than_the_snap_tolerance_form_no_corridor():
    # six 0.5 m pieces collapse onto one node when snapped at 1 m: before, they became
    # corridors of their own with an empty GeometryCollection as geometry
    tiny = [line((0.0, y), (0.0, y + 0.5)) for y in np.arange(0.0, 3.0, 0.5)]
    lines = np.array([*tiny, line((0.0, 3.0), (0.0, 333.0))], dtype=object)
    found = cn.build_corridors(lines, np.full(len(lines), 20.0), top_n=20)
    assert [c.segments.tolist() for c in found] == [[6]]
    assert found[0].geometry.geom_type == "LineString"
    assert 330.0 <= found[0].geometry.length <= 333.0
