"""DIPAS PDS GeoJSON and CSV exports and the CIMT corpora -> the contributions schema."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import shape

from cut_processes.io.cimt import read_cimt
from cut_processes.io.dipas import CONTRIBUTION_FIELDS, read_dipas_csv, read_dipas_geojson
from cut_processes.io.records import UnreadableFileError

SECRET = "Meine Nachbarin Erika Beispiel wohnt in Haus 5"  # must never reach a reject reason


def pds_feature(cid, geometry=None, **props):
    base = {
        "id": cid,
        "title": "Tempo 30 vor der Schule",
        "contributionContent": "Bitte eine Tempo-30-Zone einrichten.",
        "category": "Verkehr",
        "contributionType": "Idee",
        "dateCreated": "2021-08-04T10:15:00Z",
        "votingPro": 5,
        "votingContra": 1,
        "commentsNumber": 2,
        "belongToProject": "freiraumottensen",
        "link": f"https://example.org/dipas/#/contribution/{cid}",
        "referenceSystem": "25832",
        "dipasLocated": True,
    }
    base.update(props)
    return {"type": "Feature", "geometry": geometry, "properties": base}


def test_pds_geojson_is_normalised(tmp_path):
    point = {"type": "Point", "coordinates": [563000.0, 5934000.0]}
    features = [
        pds_feature(262, point),
        pds_feature(263, {"type": "Point", "coordinates": [9.93, 53.55]}, referenceSystem="4326"),
        pds_feature(264, {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1], [0, 0]]]},
                    dipasLocated=False),  # project area only: no geometry
        pds_feature(265, {"type": "Point", "coordinates": [0, 0]}),  # DIPAS' "no location"
        pds_feature(None),
        pds_feature(266, dateCreated="gestern", contributionContent=SECRET),
        pds_feature(267, votingPro="viele"),
        pds_feature(268, {"type": "LineString", "coordinates": [[563000, 5934000]]}),
    ]  # fmt: skip
    path = tmp_path / "contributions.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    result = read_dipas_geojson([path])
    by_id = {f["properties"]["id"]: f for f in result.features}
    assert sorted(by_id) == ["262", "263", "264", "265"]
    p = by_id["262"]["properties"]
    assert set(p) == set(CONTRIBUTION_FIELDS)
    assert p == {
        "id": "262", "title": "Tempo 30 vor der Schule",
        "text": "Bitte eine Tempo-30-Zone einrichten.", "category": "Verkehr",
        "contribution_type": "Idee", "date_created": "2021-08-04T10:15:00Z", "votes_up": 5,
        "votes_down": 1, "comments": 2, "project": "freiraumottensen",
        "url": "https://example.org/dipas/#/contribution/262", "topics": None,
        "source": "DIPAS PDS export contributions.geojson",
    }  # fmt: skip
    assert by_id["262"]["geometry"]["coordinates"] == (563000.0, 5934000.0)
    x, y = shape(by_id["263"]["geometry"]).coords[0]
    assert 561000 < x < 565000 and 5933000 < y < 5936000  # CRS84 -> EPSG:25832
    assert by_id["264"]["geometry"] is None and by_id["265"]["geometry"] is None
    reasons = dict(result.rejected)
    assert reasons["contributions.geojson feature 4"] == "no contribution id"
    assert "dateCreated" in reasons["contributions.geojson feature 5"]
    assert "votingPro" in reasons["contributions.geojson feature 6"]
    assert "LineString" in reasons["contributions.geojson feature 7"]
    assert not any(SECRET in reason for _, reason in result.rejected)
    assert result.geometry_type == "Geometry"


def test_pds_file_errors_name_the_file(tmp_path):
    path = tmp_path / "x.geojson"
    path.write_text("{not json", "utf-8")
    with pytest.raises(UnreadableFileError, match=r"x\.geojson: not JSON"):
        read_dipas_geojson([path])
    path.write_text('{"type": "Feature"}', "utf-8")
    with pytest.raises(UnreadableFileError, match="FeatureCollection"):
        read_dipas_geojson([path])


ENGLISH = (
    "Node ID;Category;Rubric;Created (UTC);Rating;Total votes;Upvotes;Downvotes;Comments;Title;"
    "Contributiontext;Location;Contribution Type;Selected Keywords;Suggested Keywords\n"
    '12;Verkehr;Hinweis;2021-08-05T09:00:00Z;4;6;5;1;0;Radweg;"Der Radweg ist zu schmal; '
    'bitte verbreitern.";Yes;Point;;\n'
    "13;Grün;Idee;2021-08-06T12:30:00Z;0;0;0;0;1;Bäume;Mehr Straßenbäume!;No;None;;\n"
    "14;Grün;Idee;kein Datum;0;0;0;0;1;Bänke;Mehr Bänke;No;None;;\n"
)
GERMAN = (
    "Beitrags-ID;Kategorie;Rubrik;Erstellt (UTC);Zustimmungen;Ablehnungen;Kommentare;Titel;"
    "Beitragstext;Verortung\n"
    "21;Verkehr;Kritik;05.08.2021 09:00;3;2;0;Parken;Falschparker überall.;Nein\n"
    ";Verkehr;Kritik;05.08.2021 09:00;3;2;0;Ohne ID;Text;Nein\n"
    "22;Verkehr;Kritik;05.08.2021 10:00;drei;2;0;Zahl;Text;Nein\n"
)


def test_csv_export_with_english_and_german_headers(tmp_path):
    english = tmp_path / "contributions.csv"
    english.write_bytes(b"\xef\xbb\xbf" + ENGLISH.encode("utf-8"))  # DIPAS writes a BOM
    german = tmp_path / "beitraege.csv"
    german.write_text(GERMAN, "utf-8")
    result = read_dipas_csv([english, german], project="FreiRaum Ottensen")
    by_id = {f["properties"]["id"]: f["properties"] for f in result.features}
    assert sorted(by_id) == ["12", "13", "21"]
    assert by_id["12"]["text"] == "Der Radweg ist zu schmal; bitte verbreitern."
    assert (by_id["12"]["votes_up"], by_id["12"]["votes_down"], by_id["12"]["comments"]) == (
        5,
        1,
        0,
    )
    assert by_id["12"]["contribution_type"] == "Hinweis"
    assert by_id["13"]["title"] == "Bäume" and by_id["13"]["category"] == "Grün"
    assert by_id["21"]["date_created"] == "2021-08-05T09:00:00Z"
    assert by_id["21"]["project"] == "FreiRaum Ottensen"
    assert all(f["geometry"] is None for f in result.features)
    reasons = dict(result.rejected)
    assert "date_created" in reasons["contributions.csv line 4"]
    assert reasons["beitraege.csv line 3"] == "no contribution id"
    assert "votes_up" in reasons["beitraege.csv line 4"]


def test_csv_without_the_needed_columns_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a;b;c\n1;2;3\n", "utf-8")
    with pytest.raises(UnreadableFileError, match=r"other\.csv: not a DIPAS contributions export"):
        read_dipas_csv([path])


OTTENSEN = (
    "document_id,title,text,url,cycling,walking,stationary traffic (parking)\n"
    'Ott1,Radweg,"Zu schmal,\nbitte verbreitern",https://example.org/#/contribution/1,1,0,1\n'
    "Ott2,Gehweg,Zu eng,https://example.org/#/contribution/2,0,1,0\n"
    "Ott3,Falsch,Label,https://example.org/#/contribution/3,2,0,0\n"
)
CYCLING = (
    "ID,title,text,main_category_level1,URL,created,level2_new_cycle_path,level2_speed_limit,"
    "dataset,level1_misc\n"
    "B1,Radweg,,level1_cycle_path_quality,https://example.org/b1,2017-09-13T08:08:40+02:00,1,1,B,0\n"
    "M7,Tempo,Tempo 30,level1_misc,https://example.org/m7,2017-09-14T10:00:00+02:00,0,1,M,1\n"
    "X1,Wo,Text,level1_misc,https://example.org/x1,2017-09-14T10:00:00+02:00,0,0,Z,1\n"
)


def test_cimt_corpora(tmp_path):
    ottensen = tmp_path / "ottensen.csv"
    ottensen.write_text(OTTENSEN, "utf-8")
    cycling = tmp_path / "cycling.csv"
    cycling.write_text(CYCLING, "utf-8")
    result = read_cimt([ottensen, cycling])
    by_id = {f["properties"]["id"]: f["properties"] for f in result.features}
    assert sorted(by_id) == ["B1", "M7", "Ott1", "Ott2"]
    assert by_id["Ott1"]["topics"] == ["cycling", "stationary traffic (parking)"]
    assert by_id["Ott1"]["text"] == "Zu schmal,\nbitte verbreitern"
    assert by_id["Ott2"]["topics"] == ["walking"]
    assert by_id["B1"]["category"] == "cycle_path_quality"
    assert by_id["B1"]["topics"] == ["new_cycle_path", "speed_limit"]
    assert by_id["B1"]["text"] is None and by_id["B1"]["project"] == "Raddialog Bonn 2017"
    assert by_id["B1"]["date_created"] == "2017-09-13T06:08:40Z"
    assert by_id["M7"]["project"] == "Raddialog Moers 2017"
    reasons = dict(result.rejected)
    assert "not 0 or 1" in reasons["ottensen.csv line 5"]
    assert "unknown dataset" in reasons["cycling.csv line 4"]
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(UnreadableFileError, match="not a CIMT corpus file"):
        read_cimt([other])
