"""contribution-topics through the HTTP API (Flask test client)."""

from __future__ import annotations

import json

import pytest

EXECUTE = "/processes/contribution-topics/execution"

RAD = [
    "Der Radweg an der Hauptstraße ist viel zu schmal für Fahrräder.",
    "Radwege fehlen, Radfahrer müssen auf der Straße fahren.",
    "Bitte einen sicheren Radweg zur Schule bauen, Radfahren ist gefährlich.",
    "Die Radwegbenutzungspflicht auf dem schmalen Radweg aufheben.",
    "Fahrradstellplätze am Bahnhof fehlen, Fahrräder stehen überall.",
    "Mehr Fahrradbügel für Fahrräder vor dem Markt, Radfahrer brauchen Platz.",
]
PARK = [
    "Parkplätze fehlen, Autos parken auf dem Gehweg.",
    "Falschparker blockieren die Parkplätze vor der Apotheke.",
    "Anwohnerparken einführen, die Parkplätze sind immer voll.",
    "Parkende Autos auf dem Gehweg versperren den Weg.",
    "Parkhaus statt Parkplätze am Straßenrand, weniger parkende Autos.",
    "Zu viele Autos parken in zweiter Reihe, Parkplätze kontrollieren.",
]


def feature(fid, text, title=None, point=None, **props):
    return {"type": "Feature", "id": fid,
            "geometry": {"type": "Point", "coordinates": point} if point else None,
            "properties": {"title": title, "text": text, **props}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def execute(client, inputs, **headers):
    return client.post(EXECUTE, json={"inputs": inputs}, headers=headers)


def corpus():
    feats = [feature(f"R{i}", t, point=[9.93 + i * 1e-4, 53.55]) for i, t in enumerate(RAD)]
    feats += [feature(f"P{i}", t) for i, t in enumerate(PARK)]
    return collection(*feats)


def test_metadata_example_runs_on_the_demo(client):
    desc = client.get("/processes/contribution-topics?f=json").get_json()
    assert "Bürgerbeiträge" in client.get(
        "/processes/contribution-topics?f=json&lang=de").get_json()["title"]
    assert any(link["href"].endswith("/models/dipas-mobility-topics") for link in desc["links"])
    response = execute(client, desc["example"]["inputs"])
    assert response.status_code == 200, response.get_data(as_text=True)
    out = response.get_json()
    features = out["contributions"]["features"]
    assert len(features) == out["summary"]["contributions"] >= 250
    props = features[0]["properties"]
    for key in ("topics", "scores", "topic", "confidence", "explanation", "needs_review",
                "model", "discovered_topic", "discovered_confidence"):
        assert key in props
    assert props["model"].startswith("dipas-mobility-topics@")
    assert len(props["scores"]) == 12 and 0 <= props["confidence"] <= 1
    # the demo plants personal data: it is redacted and counted, and never in the output
    redactions = out["summary"]["redactions"]
    assert redactions["email"] >= 1 and redactions["phone"] >= 1 and redactions["name"] >= 1
    text = json.dumps(out, ensure_ascii=False)
    assert "@example.org" not in text and "66969" not in text
    assert len(out["topics"]["discovered"]) == 8
    assert len(out["topics"]["classified"]) == 12
    located = [t for t in out["topics"]["discovered"] if t["cluster"]]
    assert located and 9 < located[0]["cluster"]["centroid"][0] < 11
    assert out["provenance"]["models"][0]["id"] == "dipas-mobility-topics"


def test_classify_with_the_cycling_model_and_explanations(client):
    inputs = {"contributions": collection(
        feature("a", "Die Ampel an der Kreuzung ist viel zu kurz grün für Radfahrer.",
                title="Ampelschaltung"),
        feature("b", "Es fehlen Fahrradbügel und Abstellanlagen am Bahnhof.",
                title="Fahrradparken")),
        "mode": "classify", "model": "cycling-dialogue-categories"}
    out = execute(client, inputs).get_json()
    a, b = (f["properties"] for f in out["contributions"]["features"])
    assert a["topic"] == "traffic_lights" and a["topics"] == ["traffic_lights"]
    assert b["topic"] == "bicycle_parking"
    assert a["explanation"] and all(e["weight"] > 0 for e in a["explanation"])
    assert abs(sum(a["scores"].values()) - 1) < 1e-3
    assert "discovered_topic" not in a


def test_in_job_model_from_labelled_examples(client):
    data = corpus()
    data["features"].append(feature("X1", "Überall parken Autos, wir brauchen Parkplätze."))
    data["features"].append(feature("X2", "Ein breiter Radweg für Radfahrer wäre gut."))
    labelled = [{"id": f"R{i}", "topics": ["Rad"]} for i in range(6)] + [
        {"id": f"P{i}", "topics": ["Parken"]} for i in range(6)]
    out = execute(client, {"contributions": data, "mode": "classify",
                           "labelled": labelled}).get_json()
    by_id = {f["id"]: f["properties"] for f in out["contributions"]["features"]}
    assert by_id["X1"]["topic"] == "Parken" and by_id["X2"]["topic"] == "Rad"
    assert by_id["R0"]["method"] == "labelled" and by_id["R0"]["topics"] == ["Rad"]
    quality = out["summary"]["model_quality"]
    assert quality["folds"] == 5 and 0 <= quality["macro_f1"] <= 1
    assert by_id["X1"]["model"] == "in-job"


def test_discover_only_without_geometry(client):
    data = collection(*[feature(f"n{i}", t) for i, t in enumerate((RAD + PARK) * 2)])
    out = execute(client, {"contributions": data, "mode": "discover",
                           "topic_count": 2, "stopwords": ["Autos"]}).get_json()
    topics = out["topics"]["discovered"]
    assert sorted(t["size"] for t in topics) == [12, 12]
    assert all(t["cluster"] is None for t in topics)
    assert all("autos" not in t["keywords"] for t in topics)
    props = out["contributions"]["features"][0]["properties"]
    assert props["topic"] in {t["name"] for t in topics} and props["topics"] == [props["topic"]]
    assert props["model"] is None and props["method"].startswith("discover")
    assert len(topics[0]["representatives"]) == 3


def test_edge_texts_get_sensible_results(client):
    long_text = "Der Radweg ist kaputt. " * 3000
    data = collection(
        feature("empty", ""),
        feature("no-title", "Parkplätze fehlen überall."),
        feature("title-only", None, title="Radweg zu schmal"),
        feature("long", long_text),
        feature("english", "The bike lanes are too narrow and cars park everywhere."),
        feature("html", "<p>Mehr <b>Fahrradbügel</b> &amp; Stellplätze!</p>"),
        feature("numeric-id", "Ampel zu lange rot."),
    )
    response = execute(client, {"contributions": data, "mode": "both", "topic_count": 2})
    assert response.status_code == 200, response.get_data(as_text=True)
    by_id = {f["id"]: f["properties"] for f in response.get_json()["contributions"]["features"]}
    assert by_id["empty"]["topics"] == [] and by_id["empty"]["needs_review"] is True
    assert by_id["empty"]["confidence"] == 0.0
    assert by_id["long"]["truncated"] is True
    assert by_id["title-only"]["topic"] is not None
    assert by_id["html"]["explanation"]
    assert by_id["english"]["needs_review"] is True
    assert by_id["english"]["note"] == "the text does not look German"
    assert "note" not in by_id["no-title"]
    assert response.get_json()["summary"]["not_german"] == 1
    assert all(isinstance(p["needs_review"], bool) for p in by_id.values())


def test_dipas_pds_geojson_and_csv_export(client):
    pds = collection(
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
         "properties": {"id": "17", "title": "Radweg", "contributionContent":
                        "Der Radweg ist zu schmal, Frau Müller sagt das auch.",
                        "dipasLocated": False}})
    out = execute(client, {"contributions": pds, "mode": "classify"}).get_json()
    f = out["contributions"]["features"][0]
    assert f["geometry"] is None and f["properties"]["text"].endswith("Frau [NAME] sagt das auch.")
    assert "contributionContent" not in f["properties"]
    csv_text = ("Node ID;Category;Rubric;Title;Contributiontext\n"
                "1;Verkehr;Hinweis;Parken;Autos parken auf dem Gehweg, Tel. 040 66969 123\n"
                "2;Verkehr;Idee;Radweg;Ein breiter Radweg\n")
    out = execute(client, {"contributions": csv_text, "mode": "classify"}).get_json()
    assert [f["id"] for f in out["contributions"]["features"]] == ["1", "2"]
    assert out["summary"]["redactions"]["phone"] == 1


def test_redact_false_keeps_texts(client):
    data = collection(feature("a", "Mail an a.b@example.org wegen Radweg"))
    out = execute(client, {"contributions": data, "mode": "classify",
                           "redact": False}).get_json()
    assert "a.b@example.org" in out["contributions"]["features"][0]["properties"]["text"]
    assert out["summary"]["redactions"] is None


@pytest.mark.parametrize(
    ("inputs", "names"),
    [
        ({"contributions": collection(feature("a", "x"), feature("a", "y"))},
         ["contributions", "duplicate id 'a'"]),
        ({"contributions": collection()}, ["contributions", "no features"]),
        ({"contributions": collection(feature("a", 42))}, ["contributions", "text"]),
        ({"contributions": "just some words"}, ["contributions", "not a DIPAS"]),
        ({"contributions": {"collection": "nope"}}, ["contributions", "unknown collection"]),
        ({"contributions": collection(feature("a", "x")), "mode": "sort"}, ["mode"]),
        ({"contributions": collection(feature("a", "x")), "language": "en"}, ["language"]),
        ({"contributions": collection(feature("a", "x")), "model": "no-such-model"},
         ["model", "no-such-model"]),
        ({"contributions": collection(feature("a", "x")), "topic_count": 1}, ["topic_count"]),
        ({"contributions": collection(feature("a", "x")),
          "labelled": [{"id": "zz", "topics": ["t"]}]}, ["labelled", "'zz'"]),
        ({"contributions": collection(feature("a", "x")),
          "labelled": [{"id": "a", "topics": ["t"]}]}, ["labelled", "at least 10"]),
    ],
)
def test_bad_input_gets_400_naming_it(client, inputs, names):
    inputs.setdefault("mode", "classify")
    response = execute(client, inputs)
    assert response.status_code == 400, response.get_data(as_text=True)
    detail = json.dumps(response.get_json(), ensure_ascii=False)
    for name in names:
        assert name in detail


def test_publish_writes_redacted_results(tmp_path, monkeypatch):
    from cut_processes.io.store import open_store
    from cut_processes.processes.contribution_topics import ContributionTopicsProcessor

    store = tmp_path / "results.gpkg"
    monkeypatch.setenv("CUT_RESULTS_STORE", str(store))
    processor = ContributionTopicsProcessor({"name": "contribution-topics"})
    processor.set_job_id("job-1")
    data = collection(feature("p1", "Radweg zu schmal, Mail a.b@example.org",
                              point=[9.93, 53.55]),
                      feature("p2", "Parkplätze fehlen"))
    _, out = processor.execute({"contributions": data, "mode": "classify", "publish": True})
    published = out["summary"]["published"]
    assert published["collection"] == "contribution-topics-results"
    assert published["count"] == 2
    assert "example.org" not in store.read_bytes().decode("latin-1")
    assert open_store(store).collections()


def test_publish_through_the_api(client):
    data = collection(feature("h1", "Radweg zu schmal, Tel. 040 66969 123", point=[9.93, 53.55]),
                      feature("h2", "Parkplätze fehlen"))
    response = execute(client, {"contributions": data, "mode": "classify", "publish": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    published = response.get_json()["summary"]["published"]
    assert published["collection"] == "contribution-topics-results"
    assert published["count"] == 2
    # The published run is served as a collection a GIS client can load by job id.
    job_id = published["href"].rsplit("job_id=", 1)[1]
    items = client.get(
        f"/collections/contribution-topics-results/items?job_id={job_id}&f=json"
    ).get_json()
    assert items["numberMatched"] == 2
    props = {f["properties"]["feature_id"]: f for f in items["features"]}
    assert set(props) == {"h1", "h2"}
    assert props["h1"]["geometry"]["type"] == "Point"
    assert props["h2"]["geometry"] is None
    assert "66969" not in json.dumps(items)  # the phone number was redacted before publishing
    assert isinstance(props["h1"]["properties"]["topics"], list)
