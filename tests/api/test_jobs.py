"""The job engine through the HTTP API (Flask test client), on SQLite and on PostgreSQL.

Every test runs once per store. Jobs run in the worker processes of a real supervisor that
each app starts; the tests poll with deadlines and never assert on speed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import JobsEnv, create_jobs_app, free_port, stop_jobs_app, wait_until

from cut_processes.jobs.node import lock_holder, pid_alive

OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
FINAL = ("successful", "failed", "dismissed")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
STORES = ["sqlite", "postgresql"]


@dataclass
class Engine:
    """An app with its own job store, and shortcuts for its job routes."""

    app: Any
    env: JobsEnv

    @property
    def client(self):
        return self.app.test_client()

    def submit(self, process: str, inputs: dict, *, asynchronous: bool = True, **body):
        headers = {"Prefer": "respond-async"} if asynchronous else {}
        return self.client.post(
            f"/processes/{process}/execution", json={"inputs": inputs, **body}, headers=headers
        )

    def start(self, process: str, inputs: dict, **body) -> str:
        response = self.submit(process, inputs, **body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["jobID"]

    def status(self, job_id: str) -> dict:
        response = self.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def wait(self, job_id: str, done=lambda s: s["status"] in FINAL, timeout: float = 30):
        return wait_until(lambda: self.status(job_id), done, timeout, what=f"job {job_id}")

    def wait_running(self, job_id: str, timeout: float = 30) -> dict:
        return self.wait(job_id, lambda s: s["status"] != "accepted", timeout)

    def stored(self, job_id: str) -> dict:
        store = self.env.store()
        try:
            return store.get(job_id)
        finally:
            store.close()

    def worker_pid(self, job_id: str) -> int:
        return wait_until(
            lambda: self.stored(job_id)["worker_pid"], bool, 10, what="the worker pid"
        )

    def job_dir(self, job_id: str):
        return self.env.settings.output_dir / job_id


def _engine(make_jobs_env, store: str, **manager):
    env = make_jobs_env(store, **manager)
    return Engine(create_jobs_app(env), env)


@pytest.fixture(scope="module", params=STORES)
def engine(request, make_jobs_env):
    """Two worker processes; results above 1000 bytes go to files."""
    eng = _engine(make_jobs_env, request.param, small_result_bytes=1000)
    yield eng
    stop_jobs_app(eng.app)


@pytest.fixture(scope="module", params=STORES)
def limited(request, make_jobs_env):
    """One worker process, at most two queued jobs, sync requests wait one second."""
    eng = _engine(make_jobs_env, request.param, workers=1, max_queued=2, sync_timeout=1)
    yield eng
    stop_jobs_app(eng.app)


def _dismiss_all(eng: Engine, job_ids: list[str]) -> None:
    for job_id in job_ids:
        eng.client.delete(f"/jobs/{job_id}")


# -- 1. execution outside the web worker; sync and async ------------------------------------
def test_async_execution_answers_201_location_and_status_info_at_once(engine):
    response = engine.submit("echo", {"message": "Moin", "pause": 0.2})
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "respond-async"
    body = response.get_json()
    assert response.headers["Location"] == f"{engine.env.url}/jobs/{body['jobID']}"
    assert body["status"] == "accepted"
    assert body["processID"] == "echo"
    assert body["type"] == "process"
    assert RFC3339.match(body["created"])
    assert body["started"] is None
    assert {"self", "status"} <= {link["rel"] for link in body["links"]}

    final = engine.wait(body["jobID"])
    assert final["status"] == "successful"
    results = engine.client.get(f"/jobs/{body['jobID']}/results")
    assert results.status_code == 200
    assert results.mimetype == "application/json"
    assert results.get_json()["message"] == "Moin"


def test_prefer_with_more_preferences_still_means_async(engine):
    response = engine.client.post(
        "/processes/echo/execution",
        json={"inputs": {"message": "x"}},
        headers={"Prefer": "wait=10, respond-async"},
    )
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "respond-async"


def test_sync_execution_waits_for_the_job_run_by_another_process(engine):
    response = engine.submit("sleep", {"seconds": 0.2, "label": "sync"}, asynchronous=False)
    assert response.status_code == 200
    result = response.get_json()
    assert result["label"] == "sync"
    # The job ran in a worker process, not in this (web) process.
    assert result["pid"] != os.getpid()
    job_id = response.headers["Location"].rsplit("/", 1)[1]
    assert engine.stored(job_id)["worker_pid"] == result["pid"]
    assert engine.status(job_id)["status"] == "successful"


def test_sync_execution_with_document_response_wraps_the_outputs(engine):
    response = engine.submit("echo", {"message": "doc"}, asynchronous=False, response="document")
    assert response.status_code == 200
    assert response.get_json()["outputs"][0]["message"] == "doc"


def test_a_process_without_sync_execute_runs_async(engine):
    response = engine.submit("plain", {"a": 1}, asynchronous=False)
    assert response.status_code == 201
    job_id = response.get_json()["jobID"]
    assert engine.wait(job_id)["status"] == "successful"
    assert engine.client.get(f"/jobs/{job_id}/results").get_json() == {"inputs": {"a": 1}}


def test_200_async_jobs_submitted_at_once_all_succeed(engine):
    job_ids = [engine.start("echo", {"message": f"job {i}"}) for i in range(200)]
    store = engine.env.store()
    try:
        statuses = wait_until(
            lambda: store.statuses(job_ids),
            lambda s: all(status in FINAL for status in s.values()),
            timeout=120, what="200 finished jobs",
        )  # fmt: skip
    finally:
        store.close()
    assert set(statuses.values()) == {"successful"}
    for i in (0, 99, 199):
        result = engine.client.get(f"/jobs/{job_ids[i]}/results").get_json()
        assert result["message"] == f"job {i}"


# -- 3. statusInfo --------------------------------------------------------------------------
def test_status_info_has_every_field_and_running_comes_from_the_worker(engine):
    job_id = engine.start("sleep", {"seconds": 1})
    running = engine.wait_running(job_id)
    assert running["status"] == "running"
    assert running["started"] is not None and running["started"] >= running["created"]
    assert running["finished"] is None
    assert engine.stored(job_id)["worker_pid"] not in (None, os.getpid())

    final = engine.wait(job_id)
    assert set(final) >= {
        "jobID", "processID", "type", "status", "message", "created", "started",
        "finished", "updated", "progress", "links",
    }  # fmt: skip
    for key in ("created", "started", "finished", "updated"):
        assert RFC3339.match(final[key]), key
    assert final["created"] <= final["started"] <= final["finished"]
    assert final["progress"] == 100
    assert final["message"] == "Job complete"
    links = {link["rel"]: link["href"] for link in final["links"]}
    assert links["self"].startswith(f"{engine.env.url}/jobs/{job_id}")
    assert links["http://www.opengis.net/def/rel/ogc/1.0/results"].startswith(
        f"{engine.env.url}/jobs/{job_id}/results"
    )


def test_status_is_json_by_default_and_html_on_request(engine):
    job_id = engine.start("echo", {"message": "html"})
    engine.wait(job_id)
    assert engine.client.get(f"/jobs/{job_id}").mimetype == "application/json"
    html = engine.client.get(f"/jobs/{job_id}?f=html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert job_id in html.get_data(as_text=True)
    browser = engine.client.get(f"/jobs/{job_id}", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.mimetype == "text/html"
    listing = engine.client.get("/jobs?f=html")
    assert listing.status_code == 200 and listing.mimetype == "text/html"


# -- 4. progress ----------------------------------------------------------------------------
def test_progress_reported_by_the_processor_is_visible_while_it_runs(engine):
    job_id = engine.start("echo", {"message": "geheim-progress", "pause": 3})
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = engine.status(job_id)
        if status["status"] == "running" and 0 < status["progress"] < 100:
            seen.append((status["progress"], status["message"]))
        if status["status"] in FINAL:
            break
        time.sleep(0.2)
    assert status["status"] == "successful"
    values = [p for p, _ in seen]
    assert len(set(values)) >= 3, seen  # it moved while we watched
    assert values == sorted(values)
    assert all("waiting" in message for _, message in seen)
    assert not any("geheim" in message for _, message in seen)


def test_two_long_jobs_run_at_once_and_both_make_progress(engine):
    first = engine.start("sleep", {"seconds": 3})
    second = engine.start("sleep", {"seconds": 3})

    def both_running_with_progress():
        return [engine.status(first), engine.status(second)]

    states = wait_until(
        both_running_with_progress,
        lambda s: all(x["status"] == "running" and x["progress"] > 0 for x in s),
        timeout=30, what="two running jobs with progress",
    )  # fmt: skip
    later = wait_until(
        both_running_with_progress,
        lambda s: all(x["progress"] > y["progress"] or x["status"] in FINAL
                      for x, y in zip(s, states, strict=True)),
        timeout=30, what="progress of both jobs",
    )  # fmt: skip
    assert all(x["status"] in ("running", "successful") for x in later)
    assert engine.wait(first)["status"] == engine.wait(second)["status"] == "successful"


# -- 5. cancellation ------------------------------------------------------------------------
def test_dismissing_a_running_job_stops_its_worker_and_removes_partial_outputs(engine):
    job_id = engine.start("sleep", {"seconds": 60, "partial": True})
    engine.wait_running(job_id)
    pid = engine.worker_pid(job_id)
    partial = engine.job_dir(job_id) / "partial.txt"
    wait_until(partial.exists, bool, 10, what="the partial output")

    response = engine.client.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["jobID"] == job_id and body["status"] == "dismissed"

    wait_until(lambda: pid_alive(pid), lambda alive: not alive, 10, what="worker to stop")
    wait_until(engine.job_dir(job_id).exists, lambda e: not e, 10, what="files removed")
    status = engine.status(job_id)
    assert status["status"] == "dismissed"
    assert status["finished"] is not None
    results = engine.client.get(f"/jobs/{job_id}/results")
    assert results.status_code == 410
    assert "dismissed" in results.get_json()["detail"]


def test_dismissing_a_finished_job_deletes_it_and_its_result_file(engine):
    job_id = engine.start("sleep", {"seconds": 0, "result_bytes": 5000})
    assert engine.wait(job_id)["status"] == "successful"
    result_file = engine.job_dir(job_id) / "result.bin"
    assert result_file.is_file()

    response = engine.client.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert response.get_json()["status"] == "dismissed"
    assert not engine.job_dir(job_id).exists()
    gone = engine.client.get(f"/jobs/{job_id}")
    assert gone.status_code == 404
    assert gone.get_json()["type"] == OGC + "no-such-job"


def test_dismissing_an_unknown_job_is_404(engine):
    response = engine.client.delete("/jobs/no-such-job-here")
    assert response.status_code == 404
    assert response.get_json()["type"] == OGC + "no-such-job"


def test_cancelling_the_running_job_frees_its_slot_for_the_next(limited):
    first = limited.start("sleep", {"seconds": 60})
    limited.wait_running(first)
    second = limited.start("sleep", {"seconds": 0.2})
    time.sleep(0.5)  # give the single worker slot a chance to be (wrongly) reused
    queued = limited.status(second)
    assert queued["status"] == "accepted"
    assert queued["started"] is None  # running/started come from the worker only

    assert limited.client.delete(f"/jobs/{first}").status_code == 200
    assert limited.wait(second)["status"] == "successful"
    assert limited.status(first)["status"] == "dismissed"


# -- 6. results -----------------------------------------------------------------------------
def test_small_results_are_kept_in_the_store_and_large_ones_as_files(engine):
    small = engine.start("sleep", {"seconds": 0, "result_bytes": 10})
    large = engine.start("sleep", {"seconds": 0, "result_bytes": 200_000})
    engine.wait(small)
    engine.wait(large)
    assert engine.stored(small)["result_path"] is None
    assert not engine.job_dir(small).exists()
    path = engine.stored(large)["result_path"]
    assert path and path.startswith(str(engine.job_dir(large)))
    for job_id, size in ((small, 10), (large, 200_000)):
        response = engine.client.get(f"/jobs/{job_id}/results")
        assert response.status_code == 200
        assert response.mimetype == "application/octet-stream"
        assert response.get_data() == bytes(size)


def test_results_of_an_unfinished_job_are_not_ready(engine):
    job_id = engine.start("sleep", {"seconds": 30})
    try:
        response = engine.client.get(f"/jobs/{job_id}/results")
        assert response.status_code == 404
        assert response.get_json()["type"] == OGC + "result-not-ready"
    finally:
        _dismiss_all(engine, [job_id])


def test_results_are_json_by_default_and_html_with_f_html(engine):
    job_id = engine.start("echo", {"message": "format"})
    engine.wait(job_id)
    plain = engine.client.get(f"/jobs/{job_id}/results")
    assert plain.mimetype == "application/json"
    html = engine.client.get(f"/jobs/{job_id}/results?f=html")
    assert html.mimetype == "text/html"
    assert engine.client.get(f"/jobs/{job_id}/results?f=xml").status_code == 400


@pytest.mark.parametrize("store", STORES)
def test_finished_jobs_are_deleted_with_their_files_after_the_retention(make_jobs_app, store):
    app, env = make_jobs_app(store, retention_days=1 / 86400, cleanup_interval=0.3,
                             small_result_bytes=10)  # fmt: skip
    eng = Engine(app, env)
    job_id = eng.start("sleep", {"seconds": 0, "result_bytes": 100})
    assert eng.wait(job_id)["status"] == "successful"
    assert eng.job_dir(job_id).exists()
    wait_until(
        lambda: eng.client.get(f"/jobs/{job_id}").status_code,
        lambda code: code == 404, timeout=15, what="retention cleanup",
    )  # fmt: skip
    assert not eng.job_dir(job_id).exists()


# -- 7. errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "status", "type_", "words"),
    [
        ("input", 400, OGC + "invalid-parameter-value", "input 'mode'"),
        ("too-large", 413, OGC + "payload-too-large", "larger than 10 km²"),
        ("error", 500, "about:blank", "internal error"),
        ("exit", 500, "about:blank", "died (exit code 3)"),
        ("kill", 500, "about:blank", "died (killed by signal SIGKILL)"),
    ],
)
def test_a_failed_job_says_why_and_its_results_answer_with_its_error(
    engine, mode, status, type_, words
):
    job_id = engine.start("crash", {"mode": mode, "secret": "geheim-4711"})
    final = engine.wait(job_id)
    assert final["status"] == "failed"
    assert words in final["message"]
    assert final["exception"]["status"] == status
    results = engine.client.get(f"/jobs/{job_id}/results")
    assert results.status_code == status
    problem = results.get_json()
    assert problem["type"] == type_
    assert words in problem["detail"]
    for text in (json.dumps(final), results.get_data(as_text=True)):
        assert "geheim-4711" not in text
        assert "Traceback" not in text


@pytest.mark.parametrize(
    ("mode", "status"), [("input", 400), ("too-large", 413), ("error", 500)]
)
def test_a_failing_sync_execution_answers_with_the_mapped_status(engine, mode, status):
    response = engine.submit("crash", {"mode": mode, "secret": "geheim-4711"}, asynchronous=False)
    assert response.status_code == status
    problem = response.get_json()
    assert problem["status"] == status
    assert "geheim-4711" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_invalid_input_is_rejected_before_any_job_exists(engine):
    before = engine.client.get("/jobs?limit=1").get_json()["numberMatched"]
    response = engine.submit("echo", {"message": 42})
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["type"] == OGC + "invalid-parameter-value"
    assert "'message'" in problem["detail"]
    assert engine.client.get("/jobs?limit=1").get_json()["numberMatched"] == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "body is empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"outputs": {}}', "no 'inputs'"),
        (b'{"inputs": [1]}', "'inputs' must be a JSON object"),
        (b'{"inputs": {"message": "x"}, "response": "zip"}', "'response'"),
        (b'{"inputs": {"message": "x"}, "subscriber": {"failedUri": "http://x"}}', "successUri"),
        (b'{"inputs": {"message": "x"}, "subscriber": {"successUri": "ftp://x"}}', "http(s)"),
    ],
)
def test_a_bad_execute_request_gets_400_saying_what_is_wrong(engine, body, words):
    response = engine.client.post(
        "/processes/echo/execution", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert words in response.get_json()["detail"]


@pytest.mark.parametrize("prefer", ["respond-async", None])
def test_an_unknown_process_is_404_no_such_process(engine, prefer):
    headers = {"Prefer": prefer} if prefer else {}
    response = engine.client.post(
        "/processes/no-such-process/execution", json={"inputs": {}}, headers=headers
    )
    assert response.status_code == 404
    assert response.get_json()["type"] == OGC + "no-such-process"


@pytest.mark.parametrize("suffix", ["", "/results"])
def test_an_unknown_job_is_404_no_such_job(engine, suffix):
    response = engine.client.get(f"/jobs/4f9d2c5e-0000-0000-0000-000000000000{suffix}")
    assert response.status_code == 404
    assert response.get_json()["type"] == OGC + "no-such-job"


def test_logs_and_job_messages_never_contain_input_data(engine):
    secret = "geheim-personal-9931"
    ok = engine.start("echo", {"message": secret, "pause": 0.5})
    crash = engine.start("crash", {"mode": "error", "secret": secret})
    engine.wait(ok)
    engine.wait(crash)
    logs = "".join(p.read_text(errors="replace") for p in engine.env.var_dir.glob("*.log"))
    assert "internal error in job" in logs  # the crash was logged...
    assert secret not in logs  # ...without the data
    for job_id in (ok, crash):
        assert secret not in engine.status(job_id)["message"]


def test_conformance_declares_job_list_dismiss_and_callback(engine):
    classes = engine.client.get("/conformance?f=json").get_json()["conformsTo"]
    for name in ("job-list", "dismiss", "callback"):
        assert f"http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/{name}" in classes


def test_health_checks_the_job_store(engine):
    report = engine.client.get("/health").get_json()
    jobs = [check for check in report["checks"] if check["name"] == "jobs"]
    assert jobs and jobs[0]["status"] == "ok"


# -- 9. recovery ----------------------------------------------------------------------------
def test_a_killed_worker_fails_its_job_and_the_engine_keeps_serving(engine):
    job_id = engine.start("sleep", {"seconds": 60})
    engine.wait_running(job_id)
    os.kill(engine.worker_pid(job_id), signal.SIGKILL)
    final = engine.wait(job_id)
    assert final["status"] == "failed"
    assert "died (killed by signal SIGKILL)" in final["message"]
    assert engine.submit("echo", {"message": "still here"}, asynchronous=False).status_code == 200


def test_a_killed_supervisor_is_replaced_and_its_job_ends_failed(engine):
    job_id = engine.start("sleep", {"seconds": 60})
    engine.wait_running(job_id)
    worker = engine.worker_pid(job_id)
    supervisor = lock_holder(engine.env.settings.lock_path)
    assert supervisor is not None
    os.kill(supervisor, signal.SIGKILL)

    final = engine.wait(job_id)
    assert final["status"] == "failed"
    assert "interrupted: the server stopped or restarted" in final["message"]
    wait_until(lambda: pid_alive(worker), lambda alive: not alive, 10, what="orphan worker")
    assert lock_holder(engine.env.settings.lock_path) != supervisor
    assert engine.submit("echo", {"message": "new one"}, asynchronous=False).status_code == 200


def test_jobs_of_a_vanished_node_are_failed_or_requeued_by_the_sweep(engine):
    store = engine.env.store()
    long_ago = time.time() - 600
    ghost = {"process_id": "echo", "type": "process", "created": long_ago, "updated": long_ago,
             "node": "vanished-host:/var/lock", "claim": "x", "heartbeat": long_ago,
             "request": {"inputs": {"message": "requeued"}, "outputs": None, "response": "raw"},
             "progress": 0, "message": "", "timeout": 60}  # fmt: skip
    try:
        store.add({**ghost, "job_id": "ghost-running", "status": "running", "started": long_ago})
        store.add({**ghost, "job_id": "ghost-claimed", "status": "accepted"})
    finally:
        store.close()
    failed = engine.wait("ghost-running", timeout=20)
    assert failed["status"] == "failed"
    assert "interrupted" in failed["message"]
    requeued = engine.wait("ghost-claimed", timeout=20)
    assert requeued["status"] == "successful"  # never started, so it ran here


@pytest.mark.parametrize("store", STORES)
def test_stopping_the_server_mid_job_leaves_no_job_running(make_jobs_app, store):
    app, env = make_jobs_app(store, workers=1)
    eng = Engine(app, env)
    running = eng.start("sleep", {"seconds": 60})
    eng.wait_running(running)
    queued = eng.start("echo", {"message": "after the restart"})
    stop_jobs_app(app)  # what the supervisor does when its server goes away

    restarted = Engine(create_jobs_app(env), env)
    try:
        final = restarted.status(running)
        assert final["status"] == "failed"
        assert "interrupted: the server stopped or restarted" in final["message"]
        assert restarted.wait(queued)["status"] == "successful"  # not lost
        listing = restarted.client.get("/jobs?status=running").get_json()
        assert listing["numberMatched"] == 0
    finally:
        stop_jobs_app(restarted.app)


@pytest.mark.parametrize("store", STORES)
def test_an_external_supervisor_runs_the_jobs_of_a_server_that_starts_none(
    make_jobs_app, store
):
    app, env = make_jobs_app(store, supervisor="external")
    eng = Engine(app, env)
    health = eng.client.get("/health")
    assert health.status_code == 503
    jobs_check = next(c for c in health.get_json()["checks"] if c["name"] == "jobs")
    assert "no job supervisor" in jobs_check["detail"]
    job_id = eng.start("echo", {"message": "queued until a supervisor runs"})

    with (env.var_dir / "external-supervisor.log").open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "cut_processes.jobs.supervisor", "--config", str(env.config)],
            stdout=log, stderr=log,
        )  # fmt: skip
    try:
        assert eng.wait(job_id)["status"] == "successful"
        assert eng.client.get("/health").status_code == 200
        running = eng.start("sleep", {"seconds": 60})
        eng.wait_running(running)
    finally:
        supervisor.terminate()
        supervisor.wait(20)
    final = eng.status(running)
    assert final["status"] == "failed"
    assert "interrupted" in final["message"]


# -- 10. callbacks --------------------------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(
            (self.path, self.headers.get("Content-Type", ""), self.rfile.read(length))
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def callback_server():
    handler = type("Recorder", (_Recorder,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler.received
    server.shutdown()
    server.server_close()


def test_callbacks_report_progress_and_success(engine, callback_server):
    url, received = callback_server
    subscriber = {"successUri": f"{url}/ok", "inProgressUri": f"{url}/running",
                  "failedUri": f"{url}/failed"}  # fmt: skip
    job_id = engine.start("sleep", {"seconds": 0.3, "label": "cb"}, subscriber=subscriber)
    assert engine.wait(job_id)["status"] == "successful"
    wait_until(lambda: {p for p, _, _ in received}, lambda p: p >= {"/ok", "/running"}, 15)
    success = next(body for path, _, body in received if path == "/ok")
    assert json.loads(success)["label"] == "cb"
    assert "callbackError" not in engine.status(job_id)


def test_a_failed_job_calls_the_failed_uri(engine, callback_server):
    url, received = callback_server
    job_id = engine.start(
        "crash", {"mode": "too-large"}, subscriber={"successUri": f"{url}/ok",
                                                    "failedUri": f"{url}/failed"},
    )  # fmt: skip
    engine.wait(job_id)
    wait_until(lambda: [p for p, _, _ in received], lambda p: "/failed" in p, 15)
    body = json.loads(next(b for p, _, b in received if p == "/failed"))
    assert body["jobID"] == job_id and body["status"] == 413
    assert "/ok" not in [p for p, _, _ in received]


def test_a_killed_worker_calls_the_failed_uri_from_the_supervisor(engine, callback_server):
    url, received = callback_server
    job_id = engine.start(
        "crash", {"mode": "kill", "after": 0.2},
        subscriber={"successUri": f"{url}/ok", "failedUri": f"{url}/failed"},
    )  # fmt: skip
    engine.wait(job_id)
    wait_until(lambda: [p for p, _, _ in received], lambda p: "/failed" in p, 15)
    body = json.loads(next(b for p, _, b in received if p == "/failed"))
    assert "SIGKILL" in body["detail"]


def test_callbacks_to_internal_addresses_are_refused_unless_allowed(engine, callback_server):
    url, received = callback_server
    # echo has no allow_internal_requests: its callbacks may not reach 127.0.0.1.
    job_id = engine.start("echo", {"message": "x"}, subscriber={"successUri": f"{url}/ok"})
    assert engine.wait(job_id)["status"] == "successful"
    status = engine.wait(job_id, lambda s: "callbackError" in s, timeout=15)
    assert "internal addresses are refused" in status["callbackError"]
    assert received == []


def test_an_unreachable_callback_is_logged_on_the_job_and_never_blocks(engine):
    dead = f"http://127.0.0.1:{free_port()}/gone"
    started = time.monotonic()
    job_id = engine.start("sleep", {"seconds": 0}, subscriber={"successUri": dead})
    assert time.monotonic() - started < 5  # the API answered without waiting for it
    assert engine.wait(job_id)["status"] == "successful"
    status = engine.wait(job_id, lambda s: "callbackError" in s, timeout=15)
    assert dead in status["callbackError"]


# -- 11. limits -----------------------------------------------------------------------------
def test_a_full_queue_answers_429_with_retry_after(limited):
    running = limited.start("sleep", {"seconds": 60})
    limited.wait_running(running)
    queued = [limited.start("sleep", {"seconds": 0}) for _ in range(2)]
    try:
        response = limited.submit("sleep", {"seconds": 0})
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert "2 jobs are already waiting" in response.get_json()["detail"]
    finally:
        _dismiss_all(limited, [running, *queued])


def test_a_job_over_its_time_limit_fails_saying_so(engine):
    job_id = engine.start("sleep-limited", {"seconds": 60, "partial": True})
    final = engine.wait(job_id, timeout=30)
    assert final["status"] == "failed"
    assert "exceeded the time limit of 1 s for process 'sleep-limited'" in final["message"]
    wait_until(engine.job_dir(job_id).exists, lambda e: not e, 10, what="files removed")


def test_a_sync_request_over_sync_timeout_gets_504_and_the_job_goes_on(limited):
    response = limited.submit("echo", {"message": "slow", "pause": 2.5}, asynchronous=False)
    assert response.status_code == 504
    problem = response.get_json()
    job_id = response.headers["Location"].rsplit("/", 1)[1]
    assert f"/jobs/{job_id}" in problem["detail"]
    assert "Prefer: respond-async" in problem["detail"]
    assert limited.wait(job_id)["status"] == "successful"


# -- pygeoapi's manager interface -----------------------------------------------------------
def test_pygeoapi_manager_methods_work_over_the_store(engine):
    from pygeoapi.util import JobStatus, RequestedProcessExecutionMode

    manager = engine.app.config["CUT_PYGEOAPI"].manager
    job_id, _mime, outputs, status, _ = manager.execute_process("echo", {"message": "pg"})
    assert status == JobStatus.successful and outputs["message"] == "pg"
    assert manager.get_job(job_id)["status"] == "successful"
    assert manager.get_job_result(job_id)[1]["message"] == "pg"
    listed = manager.get_jobs(status=JobStatus.successful, limit=5)
    assert listed["numberMatched"] >= 1 and len(listed["jobs"]) <= 5
    *_ignored, async_status, headers = manager.execute_process(
        "echo", {"message": "pg"}, execution_mode=RequestedProcessExecutionMode.respond_async
    )
    assert async_status == JobStatus.accepted
    assert headers["Preference-Applied"] == "respond-async"
    assert manager.delete_job(job_id) is True


def test_pygeoapi_own_job_routes_work_with_the_manager(make_jobs_env):
    """Without the suite's routes (pygeoapi's stock app), jobs still run and report."""
    from cut_processes.server.app import _load_pygeoapi_flask_module

    env = make_jobs_env("sqlite")
    saved = dict(os.environ)
    try:
        module = _load_pygeoapi_flask_module(env.config, env.openapi)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    client = module.APP.test_client()
    try:
        response = client.post(
            "/processes/echo/execution?f=json", json={"inputs": {"message": "stock"}},
            headers={"Prefer": "respond-async"},
        )  # fmt: skip
        assert response.status_code == 201
        job_id = response.get_json()["jobID"]
        status = wait_until(
            lambda: client.get(f"/jobs/{job_id}?f=json").get_json(),
            lambda s: s["status"] in FINAL, 30, what="the job via pygeoapi's routes",
        )  # fmt: skip
        assert status["status"] == "successful"
        assert client.get(f"/jobs/{job_id}/results?f=json").get_json()["message"] == "stock"
        assert client.get("/jobs?f=json").get_json()["jobs"][0]["jobID"] == job_id
        assert client.delete(f"/jobs/{job_id}").status_code == 200
    finally:
        module.api_.manager.shutdown()
