"""The job engine behind live gunicorn servers: many web workers, several instances, crashes.

Each test starts its own servers on temporary stores (SQLite file or a PostgreSQL schema)
and stops them, and their supervisors, afterwards.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import JobsEnv, LiveServer, free_port, start_live_server, wait_until

from cut_processes.jobs.node import lock_holder, pid_alive

pytestmark = pytest.mark.e2e

FINAL = ("successful", "failed", "dismissed")
ASYNC = {"Prefer": "respond-async"}


@dataclass
class Live:
    server: LiveServer
    env: JobsEnv

    @property
    def url(self) -> str:
        return self.server.url

    def start(self, process: str, inputs: dict) -> str:
        response = requests.post(
            f"{self.url}/processes/{process}/execution", json={"inputs": inputs},
            headers=ASYNC, timeout=30,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        return response.json()["jobID"]

    def status(self, job_id: str) -> dict:
        response = requests.get(f"{self.url}/jobs/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_id: str, done=lambda s: s["status"] in FINAL, timeout: float = 60):
        return wait_until(lambda: self.status(job_id), done, timeout, 0.1, f"job {job_id}")

    def stored(self, job_id: str) -> dict:
        store = self.env.store()
        try:
            return store.get(job_id)
        finally:
            store.close()

    def worker_pid(self, job_id: str) -> int:
        return wait_until(lambda: self.stored(job_id)["worker_pid"], bool, 15, what="worker pid")


@pytest.fixture()
def live(make_jobs_env):
    """``live(store, web_workers=2, connection=None, env=None, **manager)`` -> Live."""
    started: list[Live] = []

    def start(store: str = "sqlite", web_workers: int = 2, connection: str | None = None,
              env: JobsEnv | None = None, **manager) -> Live:  # fmt: skip
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if env is None:
            env = make_jobs_env(store, url=url, connection=connection, **manager)
        server_env = env.server_env()
        server_env.url = url  # a restarted server may get another port
        server = start_live_server(server_env, port, workers=web_workers)
        instance = Live(server, env)
        started.append(instance)
        return instance

    yield start
    for instance in reversed(started):  # a restarted server shares its predecessor's lock
        if instance.server.process.poll() is None:
            stop_server(instance)


def stop_server(instance: Live, sig: signal.Signals = signal.SIGTERM) -> None:
    """Stop gunicorn and wait for the supervisor it owned to stop too."""
    supervisor = lock_holder(instance.env.settings.lock_path)
    if sig == signal.SIGTERM:
        instance.server.stop()
    else:
        instance.server.process.send_signal(sig)
        instance.server.process.wait(15)
    if supervisor is not None:
        deadline = time.monotonic() + 20
        while pid_alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(supervisor):  # never leave a stray process behind
            os.kill(supervisor, signal.SIGKILL)
            pytest.fail(f"supervisor {supervisor} did not stop with its server")


def supervisors_of(var_dir: Path) -> list[int]:
    """Pids of supervisor processes started for this var dir (not their forked workers)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        mine = "cut_processes.jobs.supervisor" in cmdline and str(var_dir) in cmdline
        if mine and pid_alive(int(entry.name)):
            found[int(entry.name)] = parent
    return [pid for pid, parent in found.items() if parent not in found]


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


def test_four_web_workers_on_one_sqlite_store_run_200_concurrent_jobs(live):
    server = live("sqlite", web_workers=4)
    web_pids = {server.server.process.pid, *children_of(server.server.process.pid)}

    def submit_and_wait(i: int) -> tuple[str, str]:
        job_id = server.start("echo", {"message": f"job {i}"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = requests.get(f"{server.url}/jobs/{job_id}", timeout=30).json()["status"]
            if status in FINAL:
                return job_id, status
            time.sleep(0.1)
        return job_id, "timeout"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(submit_and_wait, range(200)))
    assert {status for _, status in outcomes} == {"successful"}
    assert len({job_id for job_id, _ in outcomes}) == 200
    result = requests.get(f"{server.url}/jobs/{outcomes[123][0]}/results", timeout=30)
    assert result.json()["message"] == "job 123"
    # Exactly one supervisor for the four web workers, and no job ran in a web worker.
    assert len(supervisors_of(server.env.var_dir)) == 1
    worker_pids = {server.stored(job_id)["worker_pid"] for job_id, _ in outcomes[:20]}
    assert not worker_pids & web_pids


def test_two_server_instances_share_one_postgres_store(live):
    first = live("postgresql")
    second = live(connection=first.env.connection)
    job_ids = [
        (first if i % 2 else second).start("echo", {"message": f"m{i}", "pause": 0.2})
        for i in range(20)
    ]
    for i, job_id in enumerate(job_ids):
        other = second if i % 2 else first  # ask the instance that did not take the job
        assert other.wait(job_id)["status"] == "successful"
    nodes = {first.stored(job_id)["node"] for job_id in job_ids}
    assert len(nodes) == 2, "both instances' supervisors ran jobs"

    # A job submitted to one instance is cancelled through the other.
    long_job = first.start("sleep", {"seconds": 60})
    first.wait(long_job, lambda s: s["status"] == "running")
    pid = first.worker_pid(long_job)
    response = requests.delete(f"{second.url}/jobs/{long_job}", timeout=30)
    assert response.status_code == 200
    wait_until(lambda: pid_alive(pid), lambda alive: not alive, 15, what="the worker to stop")
    assert first.status(long_job)["status"] == "dismissed"


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_kill_9_of_a_worker_fails_its_job_and_the_server_keeps_serving(live, store):
    server = live(store)
    job_id = server.start("sleep", {"seconds": 60})
    server.wait(job_id, lambda s: s["status"] == "running")
    os.kill(server.worker_pid(job_id), signal.SIGKILL)
    final = server.wait(job_id)
    assert final["status"] == "failed"
    assert "died (killed by signal SIGKILL)" in final["message"]
    response = requests.post(
        f"{server.url}/processes/echo/execution", json={"inputs": {"message": "next"}},
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json()["message"] == "next"


@pytest.mark.parametrize(
    ("store", "sig"),
    [("sqlite", signal.SIGTERM), ("postgresql", signal.SIGKILL)],
    ids=["sqlite-stop", "postgresql-crash"],
)
def test_restarting_the_server_mid_job_leaves_no_job_running(live, store, sig):
    server = live(store, workers=1)
    running = server.start("sleep", {"seconds": 120})
    server.wait(running, lambda s: s["status"] == "running")
    worker = server.worker_pid(running)
    queued = server.start("echo", {"message": "queued across the restart"})
    stop_server(server, sig)
    assert not pid_alive(worker)

    restarted = live(env=server.env)
    final = restarted.status(running)
    assert final["status"] == "failed"
    assert "interrupted: the server stopped or restarted" in final["message"]
    assert restarted.wait(queued)["status"] == "successful"  # accepted jobs are not lost
    listing = requests.get(f"{restarted.url}/jobs?status=running", timeout=30).json()
    assert listing["numberMatched"] == 0


def test_two_long_jobs_make_progress_and_cancelling_one_frees_its_slot(live):
    server = live("sqlite", workers=2)
    first = server.start("echo", {"message": "a", "pause": 30})
    second = server.start("echo", {"message": "b", "pause": 30})
    before = wait_until(
        lambda: [server.status(first), server.status(second)],
        lambda s: all(x["status"] == "running" and x["progress"] > 0 for x in s),
        30, 0.1, "two running jobs",
    )  # fmt: skip
    wait_until(
        lambda: [server.status(first), server.status(second)],
        lambda s: all(x["progress"] > y["progress"] for x, y in zip(s, before, strict=True)),
        30, 0.1, "progress of both jobs",
    )  # fmt: skip
    third = server.start("echo", {"message": "c"})
    time.sleep(0.5)  # both slots are taken: the third job has to wait
    assert server.status(third)["status"] == "accepted"

    assert requests.delete(f"{server.url}/jobs/{first}", timeout=30).status_code == 200
    assert server.wait(third)["status"] == "successful"
    assert server.status(first)["status"] == "dismissed"
    assert server.status(second)["status"] == "running"
    requests.delete(f"{server.url}/jobs/{second}", timeout=30)
