"""SensorThings API reader on recorded FROST responses (tests/data/sensorthings)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest

from cut_processes.io.sensorthings import (
    SensorThingsError,
    paged,
    read_sensorthings,
    urllib_get,
)

RECORDED = Path(__file__).resolve().parents[1] / "data" / "sensorthings"
ROOT = "https://iot.example.org/v1.1"
LAYER = "Anzahl_Fahrraeder_Zaehlfeld_15-Min"


class Replay:
    """An ``http_get`` answering from recorded files; it remembers what was asked."""

    def __init__(self, extra: dict[str, str] | None = None):
        index = json.loads((RECORDED / "index.json").read_text("utf-8"))
        self.files = {k: v for k, v in index.items() if not k.startswith("_")} | (extra or {})
        self.requests: list[tuple[str, float]] = []

    def __call__(self, url: str, timeout: float) -> dict:
        self.requests.append((url, timeout))
        key = urllib.parse.unquote(url)
        if key not in self.files:
            raise SensorThingsError(f"GET {url}: not recorded")
        return json.loads((RECORDED / self.files[key]).read_text("utf-8"))


def test_observations_of_the_chosen_layer_with_paging():
    replay = Replay()
    result = read_sensorthings(ROOT, layer_names=[LAYER], http_get=replay, page_size=2, timeout=7)
    records = [f["properties"] for f in result.features]
    assert [(r["datastream_id"], r["result"]) for r in records] == [
        ("101", 12.0), ("101", 7.0), ("101", 0.0), ("101", 9.0),
        ("201", 4.0), ("201", 5.0), ("201", 6.0), ("201", 2.5),
    ]  # fmt: skip
    first = records[0]
    assert first == {
        "id": "101:2023-01-01T00:00:00Z", "thing_id": "5576",
        "thing_name": "Zählstelle Beispielallee", "datastream_id": "101", "layer_name": LAYER,
        "unit": "Anzahl", "phenomenon_start": "2023-01-01T00:00:00Z",
        "phenomenon_end": "2023-01-01T00:15:00Z", "result": 12.0,
        "source": "SensorThings API https://iot.example.org/v1.1",
    }  # fmt: skip
    # an instant is a period of length zero
    assert records[-1]["phenomenon_start"] == records[-1]["phenomenon_end"]
    # the Thing's location, in EPSG:25832; a Thing without location gives no geometry
    x, y = result.features[0]["geometry"]["coordinates"]
    assert 560000 < x < 570000 and 5930000 < y < 5940000
    assert result.features[4]["geometry"] is None
    reasons = dict(result.rejected)
    assert reasons["Datastreams(101) observation 900005"].startswith("not a date and time")
    assert reasons["Datastreams(101) observation 900006"] == "no result"
    # the 1-Tag datastream and the charging station were not read; every request had the timeout
    assert not any("Datastreams(102)" in url or "(301)" in url for url, _ in replay.requests)
    assert {timeout for _, timeout in replay.requests} == {7}
    assert len(replay.requests) == 6  # 2 Things pages, 2 + 2 Observations pages


def test_a_paging_loop_is_an_error():
    url = f"{ROOT}/Things?$expand=Locations,Datastreams&$top=2"
    replay = Replay({urllib.parse.unquote(url): "loop.json"})
    with pytest.raises(SensorThingsError, match="paging loop"):
        list(paged(url, replay))


def test_too_many_pages_is_an_error():
    replay = Replay()
    url = f"{ROOT}/Things?$expand=Locations,Datastreams&$top=2"
    with pytest.raises(SensorThingsError, match="more than 1 pages"):
        list(paged(url, replay, max_pages=1))


def test_a_page_without_value_is_an_error():
    with pytest.raises(SensorThingsError, match="no 'value' list"):
        list(paged(f"{ROOT}/Things", lambda url, timeout: {"error": "nope"}))


def test_the_default_client_times_out_and_names_the_url():
    # A local socket that accepts connections but never answers.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/v1.1/Things"
    try:
        with pytest.raises(SensorThingsError, match=r"GET http://127\.0\.0\.1:\d+/v1\.1/Things"):
            urllib_get(url, timeout=0.3)
    finally:
        for conn, _ in accepted:
            conn.close()
        server.close()
