"""Inputs of cycling-volumes: repaired and reported, or refused naming the input and record."""

from __future__ import annotations

import pytest
import shapely

from cut_processes.io.cycling_inputs import (
    read_counts,
    read_routes,
    read_segments,
    read_stations,
)
from cut_processes.io.inputs import InputProblem, ResolveContext

CTX = ResolveContext()


def fc(*features, crs=None):
    out = {"type": "FeatureCollection", "features": list(features)}
    if crs:
        out["crs"] = {"type": "name", "properties": {"name": crs}}
    return out


def feat(props, geometry=None, fid=None):
    out = {"type": "Feature", "properties": props, "geometry": geometry}
    if fid is not None:
        out["id"] = fid
    return out


def line(*coords):
    return {"type": "LineString", "coordinates": [list(c) for c in coords]}


# -- stations ----------------------------------------------------------------------------------


def test_station_point_with_two_positions_is_repaired_and_reported():
    # As three stations of Hamburg's counting station file: a list of pairs for one Point.
    stations = read_stations(
        fc(
            feat(
                {"name": "Verkehrszählstelle 0286941", "id": "0286941"},
                {"type": "Point", "coordinates": [[9.93676, 53.550106], [9.936808, 53.550366]]},
            ),
            feat({"id": "b"}, {"type": "Point", "coordinates": [9.94, 53.55]}),
        ),
        CTX,
    )
    assert stations.ids == ["0286941", "b"]
    assert len(stations.report.repaired) == 1
    assert "0286941" in stations.report.repaired[0] and "mean" in stations.report.repaired[0]
    x, y = stations.points[0].x, stations.points[0].y
    assert 561_000 < x < 563_500 and 5_933_000 < y < 5_935_000  # EPSG:25832


def test_station_point_with_far_apart_positions_is_refused_by_name():
    with pytest.raises(InputProblem) as err:
        read_stations(
            fc(
                feat({"id": "x1"}, {"type": "Point", "coordinates": [[9.93, 53.55], [9.95, 53.56]]})
            ),
            CTX,
            point_tolerance_m=50,
        )
    assert err.value.input_name == "stations"
    assert "'x1'" in err.value.problem and "ambiguous" in err.value.problem


def test_projected_coordinates_without_crs_member_are_refused_with_a_hint():
    with pytest.raises(InputProblem) as err:
        read_stations(
            fc(feat({"id": "s"}, {"type": "Point", "coordinates": [562000, 5934000]})), CTX
        )
    assert "outside longitude/latitude" in err.value.problem
    # ... and accepted when the collection names its CRS
    ok = read_stations(
        fc(
            feat({"id": "s"}, {"type": "Point", "coordinates": [562000, 5934000]}),
            crs="urn:ogc:def:crs:EPSG::25832",
        ),
        CTX,
    )
    assert ok.points[0].x == pytest.approx(562000)


def test_mixed_crs_within_one_input_is_refused():
    with pytest.raises(InputProblem) as err:
        read_stations(
            fc(
                feat({"id": "a"}, {"type": "Point", "coordinates": [9.93, 53.55]}),
                {
                    **feat({"id": "b"}, {"type": "Point", "coordinates": [562000, 5934000]}),
                    "crs": {"type": "name", "properties": {"name": "EPSG:25832"}},
                },
            ),
            CTX,
        )
    assert "mixed CRS" in err.value.problem and "'b'" in err.value.problem


def test_duplicate_station_ids_are_refused():
    pt = {"type": "Point", "coordinates": [9.93, 53.55]}
    with pytest.raises(InputProblem, match="'a' appears twice"):
        read_stations(fc(feat({"id": "a"}, pt), feat({"id": "a"}, pt)), CTX)


def test_munich_stations_csv_text():
    text = (
        "zaehlstelle,zaehlstelle_lang,latitude,longitude,richtung_1,richtung_2,besonderheiten\n"
        "Arnulf,Arnulfstr. 9 - 11 Südseite,48.14205,11.55534,Ost,West,\n"
        "Kaputt,,,,,,\n"
    )
    stations = read_stations(text, CTX)
    assert stations.ids == ["Arnulf"] and stations.names == ["Arnulfstr. 9 - 11 Südseite"]
    assert len(stations.report.rejected) == 1 and "Kaputt" in stations.report.rejected[0]


# -- counts ------------------------------------------------------------------------------------


def test_count_records_from_a_feature_collection():
    counts = read_counts(
        fc(
            feat(
                {"station_id": "A", "date": "2024-05-01", "count": 12, "max_temperature_c": "21.5"}
            ),
            feat({"thing_id": 7, "phenomenon_start": "2024-05-01T10:00:00Z", "result": 3.0}),
        ),
        CTX,
    )
    first, second = counts.records
    assert first["station_id"] == "A" and first["date"] == "2024-05-01" and first["count"] == 12
    assert first["max_temperature_c"] == 21.5
    assert second["station_id"] == "7" and second["datetime"].startswith("2024-05-01T10:00")


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"station_id": "A", "date": "2024-05-01", "count": -3}, "negative count"),
        ({"station_id": "A", "date": "2024-05-01", "count": "viele"}, "is not a number"),
        ({"station_id": "A", "count": 3}, "has no date"),
        ({"date": "2024-05-01", "count": 3}, "has no station_id"),
        ({"station_id": "A", "date": "2024-13-45", "count": 3}, "2024-13-45"),
        (
            {"station_id": "A", "date": "2024-05-01", "count": 3, "precipitation_mm": "nass"},
            "precipitation_mm",
        ),
    ],
)
def test_bad_count_records_are_refused_by_record(props, message):
    with pytest.raises(InputProblem) as err:
        read_counts(fc(feat(props, fid="r1")), CTX)
    assert err.value.input_name == "counts"
    assert message in err.value.problem and "'r1'" in err.value.problem


def test_munich_counts_csv_text_reports_rejected_rows():
    header = (
        "datum,uhrzeit_start,uhrzeit_ende,zaehlstelle,richtung_1,richtung_2,gesamt,"
        "min-temp,max-temp,niederschlag,bewoelkung,sonnenstunden\n"
    )
    text = header + (
        "2023.01.01,00:00,23:59,Arnulf,121,14,135,-6.1,2.6,0.0,36,5.9\n"
        "2023.01.02,00:00,23:59,Arnulf,-5,14,9,-6.1,2.6,0.0,36,5.9\n"
    )
    counts = read_counts(text, CTX)
    assert len(counts.records) == 2  # two directions of the first day
    assert {r["count"] for r in counts.records} == {121, 14}
    assert len(counts.report.rejected) == 1 and "negative" in counts.report.rejected[0]
    with pytest.raises(InputProblem, match="no usable count"):
        read_counts(header + "2023.01.02,00:00,23:59,Arnulf,,,,1,2,0,0,0\n", CTX)
    with pytest.raises(InputProblem, match="missing columns"):
        read_counts("a,b\n1,2\n", CTX)


# -- segments ----------------------------------------------------------------------------------


def test_segments_dbrad_properties_and_stable_ids_across_weeks():
    geometry = line((9.93, 53.55), (9.931, 53.5505))
    segments = read_segments(
        fc(
            feat({"anzahl": 70, "von": "2023-02-04", "bis": "2023-02-10"}, geometry),
            feat({"anzahl": 35, "von": "2023-03-11", "bis": "2023-03-17"}, geometry),
            feat(
                {"rides": 5, "name": "Lindenweg", "road_class": "residential",
                 "week_start": "2023-03-11", "week_end": "2023-03-17"},
                line((9.94, 53.55), (9.941, 53.55)),
            ),
        ),
        CTX,
    )
    assert segments.segment_ids[0] == segments.segment_ids[1] != segments.segment_ids[2]
    assert list(segments.rides) == [70, 35, 5]
    assert list(segments.days) == [7, 7, 7]
    assert segments.periods == ["2023-02-04", "2023-03-11", "2023-03-11"]
    assert segments.names[2] == "Lindenweg" and segments.road_classes[2] == "residential"
    assert all(g.geom_type == "LineString" for g in segments.geometries)


def test_segment_repeated_in_a_period_is_dropped_and_reported():
    geometry = line((9.93, 53.55), (9.931, 53.5505))
    other = line((9.94, 53.55), (9.941, 53.55))
    segments = read_segments(
        fc(
            feat({"anzahl": 70, "von": "2023-02-04", "bis": "2023-02-10"}, geometry, fid="a"),
            feat({"anzahl": 71, "von": "2023-02-04", "bis": "2023-02-10"}, geometry, fid="b"),
            feat({"anzahl": 9, "von": "2023-02-04", "bis": "2023-02-10"}, other, fid="c"),
        ),
        CTX,
    )
    assert list(segments.rides) == [70, 9]
    assert segments.feature_ids == ["a", "c"]
    assert shapely.equals(
        segments.geometries[1], read_segments(fc(feat({"anzahl": 9}, other)), CTX).geometries[0]
    )
    assert len(segments.report.rejected) == 1 and "'b'" in segments.report.rejected[0]


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (feat({"rides": 3}, None, fid="s1"), "'s1' has no geometry"),
        (
            feat({"rides": 3}, {"type": "Point", "coordinates": [9.93, 53.55]}, fid="s1"),
            "LineString",
        ),
        (feat({"rides": -1}, line((9.93, 53.55), (9.931, 53.55)), fid="s1"), "not a count"),
        (feat({"rides": 2}, line((9.93, 53.55), (9.93, 53.55)), fid="s1"), "Too few points"),
        (
            feat(
                {"rides": 2, "week_start": "2023-02-10", "week_end": "2023-02-04"},
                line((9.93, 53.55), (9.931, 53.55)),
                fid="s1",
            ),
            "before it starts",
        ),
    ],
)
def test_bad_segments_are_refused_by_feature(feature, message):
    with pytest.raises(InputProblem) as err:
        read_segments(fc(feature), CTX)
    assert err.value.input_name == "segments" and message in err.value.problem


def test_routes_need_lines():
    routes = read_routes(fc(feat({"routennummer": 1}, line((9.93, 53.55), (9.94, 53.55)))), CTX)
    assert len(routes) == 1
    with pytest.raises(InputProblem) as err:
        read_routes(fc(feat({}, {"type": "Point", "coordinates": [9.93, 53.55]})), CTX)
    assert err.value.input_name == "official_routes"


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([feat({"rides": 3, "week_start": "2024-03-04"}, line((9.93, 53.55), (9.931, 53.55)),
               fid="h")], "first and last day"),
        ([feat({"rides": 3, "week_start": "2024-03-04", "week_end": "2024-03-10"},
               line((9.93, 53.55), (9.931, 53.55)), fid="a"),
          feat({"rides": 3}, line((9.94, 53.55), (9.941, 53.55)), fid="b")],
         "'b' has no period"),
        ([feat({"rides": 3, "week_start": "2024-03-04", "week_end": "2024-03-10"},
               line((9.93, 53.55), (9.931, 53.55)), fid="a"),
          feat({"rides": 3, "week_start": "2024-03-04", "week_end": "2024-03-31"},
               line((9.94, 53.55), (9.941, 53.55)), fid="b")], "ends 2024-03-31"),
        ([feat({"rides": 3, "week_start": "2024-03-04", "week_end": "2024-03-10"},
               line((9.93, 53.55), (9.931, 53.55)), fid="a"),
          feat({"rides": 3, "week_start": "2024-03-05", "week_end": "2024-03-11"},
               line((9.94, 53.55), (9.941, 53.55)), fid="b")], "overlap"),
        ([feat({"rides": 1e308}, line((9.93, 53.55), (9.931, 53.55)), fid="big")],
         "not a count"),
        ([feat({"rides": 3, "road_class": ["secondary"]}, line((9.93, 53.55), (9.931, 53.55)),
               fid="rc")], "must be a text"),
        ([feat({"rides": 3}, {"type": "MultiLineString", "coordinates": [
            [[9.93, 53.55], [9.931, 53.55]], [[9.94, 53.55], [9.941, 53.55]]]}, fid="ml")],
         "disconnected"),
    ],
)
def test_segment_periods_and_values_are_checked(features, message):
    with pytest.raises(InputProblem) as err:
        read_segments(fc(*features), CTX)
    assert err.value.input_name == "segments" and message in err.value.problem


def test_joining_multilinestring_is_merged_and_reported():
    segments = read_segments(fc(feat({"rides": 3}, {"type": "MultiLineString", "coordinates": [
        [[9.93, 53.55], [9.931, 53.55]], [[9.931, 53.55], [9.932, 53.55]]]})), CTX)
    assert segments.geometries[0].geom_type == "LineString"
    assert "merged" in segments.report.repaired[0]


def test_counts_screening_and_local_times():
    counts = read_counts(fc(
        feat({"station_id": "A", "date": "2024-05-01", "count": 3, "precipitation_mm": -999}),
        feat({"station_id": "A", "date": "9999-12-31", "count": 3}),
        feat({"station_id": "A", "datetime": "2024-03-01T23:00", "count": 2}),
    ), CTX)
    assert len(counts.records) == 2
    assert counts.records[0]["precipitation_mm"] is None
    assert "taken as missing" in counts.report.repaired[0]
    assert "mistyped year" in counts.report.rejected[0]
    # a time without offset is local (CET in March): 22:00 UTC, the same local day
    assert counts.records[1]["datetime"] == "2024-03-01T22:00:00Z"
    with pytest.raises(InputProblem, match="direction"):
        read_counts(fc(feat({"station_id": "A", "date": "2024-05-01", "count": 3,
                             "direction": {"x": 1}})), CTX)


def test_every_process_input_honours_the_crs_member_and_refuses_projected_crs84():
    from cut_processes.io.inputs import resolve_features

    square = [[562000, 5934000], [562010, 5934000], [562010, 5934010], [562000, 5934000]]
    polygon = {"type": "Polygon", "coordinates": [square]}
    features = resolve_features("buildings", fc(feat({"id": "b"}, polygon),
                                                crs="urn:ogc:def:crs:EPSG::25832"), CTX)
    assert features.geometries[0].bounds[0] == pytest.approx(562000)
    with pytest.raises(InputProblem, match="outside longitude/latitude"):
        resolve_features("buildings", fc(feat({"id": "b"}, polygon)), CTX)
