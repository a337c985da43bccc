"""The shared parsers of the importers: numbers, dates, CRS names, geometries."""

from __future__ import annotations

import pytest

from cut_processes.io.records import (
    epsg_from_name,
    parse_date,
    parse_datetime,
    parse_integer,
    parse_number,
    read_geometry,
    transformer,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3.5", 3.5), ("3,5", 3.5), (" 7 ", 7.0), (2, 2.0), ("", None), (None, None), ("-", None)],
)
def test_parse_number(value, expected):
    assert parse_number(value) == expected


@pytest.mark.parametrize("value", ["abc", "1.2.3", True, "nan", "inf"])
def test_parse_number_refuses(value):
    with pytest.raises(ValueError, match="number"):
        parse_number(value)


def test_parse_integer():
    assert parse_integer("12") == 12 and parse_integer(3.0) == 3 and parse_integer("") is None
    with pytest.raises(ValueError, match="whole number"):
        parse_integer("2.5")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2017.01.31", "2017-01-31"), ("31.01.2017", "2017-01-31"), ("2017-01-31", "2017-01-31"),
     ("2017-01-31T10:00:00Z", "2017-01-31"), ("", None)],
)  # fmt: skip
def test_parse_date(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2017-09-13T08:08:40+02:00", "2017-09-13T06:08:40Z"),
        ("2021-08-04T10:15:00Z", "2021-08-04T10:15:00Z"),
        ("2021-08-04 10:15:00", "2021-08-04T10:15:00Z"),
        ("04.08.2021 10:15", "2021-08-04T10:15:00Z"),
        ("2023-01-01T00:15:00.000Z", "2023-01-01T00:15:00Z"),
        ("2023-01-01T00:15:00.250Z", "2023-01-01T00:15:00.250Z"),
    ],
)
def test_parse_datetime(value, expected):
    assert parse_datetime(value) == expected


def test_parse_datetime_refuses():
    with pytest.raises(ValueError, match="not a date and time: 'gestern'"):
        parse_datetime("gestern")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("EPSG:25832", 25832),
        ("urn:ogc:def:crs:EPSG::25832", 25832),
        ("http://www.opengis.net/def/crs/EPSG/0/25833", 25833),
        ("https://www.opengis.net/def/crs/EPSG/0/7415", 7415),
        ("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH", 25832),
        ("urn:adv:crs:ETRS89_UTM33*DE_DHHN92_NH", 25833),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", 4326),
        ("25832", 25832),
        ("", None),
        ("local grid", None),
    ],
)
def test_epsg_from_name(name, code):
    assert epsg_from_name(name) == code


def test_read_geometry_repairs_an_invalid_polygon_and_says_so():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    geom, note = read_geometry(bowtie, None)
    assert geom.is_valid and geom.area == pytest.approx(50.0)
    assert note.startswith("invalid Polygon repaired (Self-intersection")


def test_read_geometry_refuses_what_it_cannot_use():
    with pytest.raises(ValueError, match="not a GeoJSON geometry object"):
        read_geometry([1, 2], None)
    with pytest.raises(ValueError, match="malformed LineString"):
        read_geometry({"type": "LineString", "coordinates": [[1, 2]]}, None)
    with pytest.raises(ValueError, match="empty Point"):
        read_geometry({"type": "Point", "coordinates": []}, None)
    to_utm = transformer("EPSG:4326")
    with pytest.raises(ValueError, match="outside the CRS"):
        read_geometry({"type": "Point", "coordinates": [9.9, 95.0]}, to_utm)
