"""``GET /jobs`` (OGC API - Processes ``job-list``): filters, order and paging, per store.

One app per store holds a known set of jobs: three echo jobs, two failed crash jobs, a one
second sleep, a running sleep and a dismissed one.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import pytest
from conftest import create_jobs_app, stop_jobs_app, wait_until

FINAL = ("successful", "failed", "dismissed")


@dataclass
class Listed:
    client: object
    ids: dict[str, str] = field(default_factory=dict)  # name -> job id
    created: dict[str, str] = field(default_factory=dict)  # name -> created

    def names(self, query: str) -> list[str]:
        """Names of the listed jobs, in the order the server lists them."""
        response = self.client.get(f"/jobs?{query}")
        assert response.status_code == 200, response.get_json()
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[job["jobID"]] for job in response.get_json()["jobs"]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def listed(request, make_jobs_env):
    env = make_jobs_env(request.param, workers=2)
    app = create_jobs_app(env)
    client = app.test_client()
    result = Listed(client)

    def start(name: str, process: str, inputs: dict) -> None:
        response = client.post(
            f"/processes/{process}/execution", json={"inputs": inputs},
            headers={"Prefer": "respond-async"},
        )  # fmt: skip
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        result.ids[name] = body["jobID"]
        result.created[name] = body["created"]

    def status(name: str) -> dict:
        return client.get(f"/jobs/{result.ids[name]}").get_json()

    for name in ("echo1", "echo2", "echo3"):
        start(name, "echo", {"message": name})
    start("crash1", "crash", {"mode": "input"})
    start("crash2", "crash", {"mode": "input"})
    start("sleep1", "sleep", {"seconds": 1})
    start("running", "sleep", {"seconds": 120})
    start("dismissed", "sleep", {"seconds": 120})
    assert client.delete(f"/jobs/{result.ids['dismissed']}").status_code == 200
    for name in ("echo1", "echo2", "echo3", "crash1", "crash2", "sleep1"):
        wait_until(lambda name=name: status(name)["status"], lambda s: s in FINAL, 60)
    wait_until(lambda: status("running")["status"], lambda s: s == "running", 60)
    yield result
    client.delete(f"/jobs/{result.ids['running']}")
    stop_jobs_app(app)


ALL = ["dismissed", "running", "sleep1", "crash2", "crash1", "echo3", "echo2", "echo1"]


def test_jobs_are_listed_newest_first_with_counts(listed):
    body = listed.client.get("/jobs?limit=100").get_json()
    assert body["numberMatched"] == 8
    assert body["numberReturned"] == 8
    assert listed.names("limit=100") == ALL
    assert listed.client.get("/jobs").get_json()["numberReturned"] == 8  # default limit 10


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("processID=echo", ["echo3", "echo2", "echo1"]),
        ("processID=echo,crash", ["crash2", "crash1", "echo3", "echo2", "echo1"]),
        ("processID=crash&processID=echo", ["crash2", "crash1", "echo3", "echo2", "echo1"]),
        ("processID=nothing", []),
        ("status=failed", ["crash2", "crash1"]),
        ("status=running", ["running"]),
        ("status=dismissed,successful", ["dismissed", "sleep1", "echo3", "echo2", "echo1"]),
        ("status=accepted", []),
        ("type=process", ALL),
        ("processID=sleep&status=successful", ["sleep1"]),
    ],
)
def test_filters_by_process_status_and_type(listed, query, expected):
    assert listed.names(f"{query}&limit=100") == expected


def test_datetime_filters_by_creation_time(listed):
    created = listed.created
    quote = urllib.parse.quote
    interval = quote(f"{created['echo2']}/{created['crash1']}")
    assert listed.names(f"datetime={interval}") == ["crash1", "echo3", "echo2"]
    assert listed.names(f"datetime=../{quote(created['echo1'])}") == ["echo1"]
    assert listed.names(f"datetime={quote(created['running'])}/..") == ["dismissed", "running"]
    assert listed.names(f"datetime={quote(created['echo3'])}") == ["echo3"]
    assert listed.names("datetime=2000-01-01T00:00:00Z/2000-12-31T00:00:00Z") == []
    day = created["echo1"][:10]
    assert len(listed.names(f"datetime={day}/..&limit=100")) == 8


def test_min_and_max_duration_filter_by_run_time(listed):
    # The running job passes 0.8 s of run time at some point: wait for it, not for a clock.
    long_ones = wait_until(
        lambda: listed.names("minDuration=0.8&limit=100"), lambda n: "running" in n, 30
    )
    assert {"sleep1", "running"} <= set(long_ones)
    assert not {"echo1", "echo2", "echo3", "crash1", "crash2"} & set(long_ones)
    short_ones = listed.names("maxDuration=0.5&limit=100")
    assert {"echo1", "echo2", "echo3", "crash1", "crash2"} <= set(short_ones)
    assert not {"sleep1", "running"} & set(short_ones)
    # The running job may be within the range too, depending on when this runs.
    between = set(listed.names("minDuration=0.8&maxDuration=5&limit=100"))
    assert between - {"running"} == {"sleep1"}


def test_paging_follows_next_and_prev_links_and_keeps_the_filters(listed):
    page = listed.client.get("/jobs?limit=3&processID=echo,crash,sleep").get_json()
    assert page["numberMatched"] == 8
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert "prev" not in rels
    seen = []
    pages = 0
    while True:
        pages += 1
        seen.extend(job["jobID"] for job in page["jobs"])
        rels = {link["rel"]: link["href"] for link in page["links"]}
        if "next" not in rels:
            break
        assert "processID=echo%2Ccrash%2Csleep" in rels["next"]
        path = rels["next"].split("localhost", 1)[1]
        page = listed.client.get(path).get_json()
    assert pages == 3
    assert seen == [listed.ids[name] for name in ALL]
    prev = rels["prev"].split("localhost", 1)[1]
    assert [j["jobID"] for j in listed.client.get(prev).get_json()["jobs"]] == seen[3:6]


def test_limit_above_the_maximum_is_capped(listed):
    body = listed.client.get("/jobs?limit=50000").get_json()
    assert body["numberReturned"] == 8


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("status=done", "status"),
        ("type=wps", "type"),
        ("datetime=yesterday", "datetime"),
        ("datetime=2024-05-02T00:00:00Z/2024-05-01T00:00:00Z", "datetime"),
        ("minDuration=-1", "minDuration"),
        ("maxDuration=long", "maxDuration"),
        ("minDuration=5&maxDuration=1", "minDuration"),
    ],
)
def test_an_invalid_filter_gets_400_naming_the_parameter(listed, query, parameter):
    response = listed.client.get(f"/jobs?{query}")
    assert response.status_code == 400
    assert f"parameter '{parameter}'" in response.get_json()["detail"]
