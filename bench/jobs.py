"""Job engine vs pygeoapi's TinyDB manager: 200 async echo jobs at once, and sync echo.

Both run behind the same gunicorn (4 web workers x 4 threads) with the suite's app, on the
same machine, in the same run. For each manager:

- ``async200``: 16 client threads submit 200 async ``echo`` jobs (``Prefer: respond-async``)
  and poll each job until it is final; seconds from the first submission to the last
  completion, and jobs per second (median of ``--runs`` runs, after a warm-up);
- ``sync``: median round trip of ``--sync-requests`` sequential sync ``echo`` requests
  (measured after the warm-up, before the async runs).

Prints ``name value unit`` lines and the ratios to TinyDB (``..._ratio_vs_tinydb``; above 1
means the job engine is better). Usage: ``python bench/jobs.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
FINAL = ("successful", "failed", "dismissed")
CLIENTS = 16
JOBS = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: Path, url: str, manager: dict) -> Path:
    config = yaml.safe_load((ROOT / "pygeoapi-config.yml").read_text(encoding="utf-8"))
    config["resources"] = {
        k: v for k, v in config["resources"].items() if v.get("type") == "process"
    }
    config["server"]["url"] = url
    config["server"]["manager"] = manager
    config["logging"] = {"level": "ERROR"}
    path = folder / "pygeoapi-config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), "utf-8")
    return path


class Server:
    """gunicorn with the suite's app factory on one configuration."""

    def __init__(self, folder: Path, config: Path, openapi: Path, port: int):
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi),
               "CUT_URL": self.url, "CUT_VAR_DIR": str(folder / "var"),
               "CUT_ACCESS_LOG_LEVEL": "WARNING"}  # fmt: skip
        self.log = (folder / "server.log").open("wb")
        argv = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "4", "--threads", "4", "--timeout", "300",
            "cut_processes.server:create_app()",
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log,
                                        stderr=self.log)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; see {folder / 'server.log'}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still booting
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start; see {folder / 'server.log'}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


def one_async_job(url: str, i: int) -> str:
    session = requests.Session()
    response = session.post(
        f"{url}/processes/echo/execution", json={"inputs": {"message": f"job {i}"}},
        headers={"Prefer": "respond-async"}, timeout=60,
    )  # fmt: skip
    if response.status_code != 201:
        return f"http {response.status_code}"
    location = response.headers["Location"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = session.get(location, params={"f": "json"}, timeout=60).json()["status"]
        if status in FINAL:
            return status
        time.sleep(0.05)
    return "timeout"


def async_run(url: str, jobs: int) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(lambda i: one_async_job(url, i), range(jobs)))
    seconds = time.perf_counter() - started
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return seconds, counts


def sync_round_trips(url: str, requests_count: int) -> float:
    session = requests.Session()
    times = []
    for i in range(requests_count):
        started = time.perf_counter()
        response = session.post(
            f"{url}/processes/echo/execution", json={"inputs": {"message": f"sync {i}"}},
            timeout=60,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"sync echo answered {response.status_code}: {response.text}")
    return statistics.median(times) * 1000


def measure(name: str, server: Server, runs: int, sync_requests: int) -> dict[str, float]:
    sync_round_trips(server.url, 10)  # warm-up: imports, connections, supervisor
    async_run(server.url, 20)
    # Sync first, while both stores are small (TinyDB rewrites its whole file per update).
    sync_ms = sync_round_trips(server.url, sync_requests)
    seconds = []
    for _ in range(runs):
        elapsed, counts = async_run(server.url, JOBS)
        if counts != {"successful": JOBS}:
            print(f"# {name}: outcomes {counts}", flush=True)
        seconds.append(elapsed)
    return {"async_seconds": statistics.median(seconds), "sync_ms": sync_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="async runs per manager")
    parser.add_argument("--sync-requests", type=int, default=50)
    args = parser.parse_args()

    from cut_processes.cli import write_openapi

    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        folder = Path(tmp)
        managers = {
            "cut": {"name": "cut_processes.jobs.CutManager", "var_dir": str(folder / "cut" / "var"),
                    "connection": "", "output_dir": str(folder / "cut" / "var" / "results"),
                    "workers": 0},
            "tinydb": {"name": "TinyDB", "connection": str(folder / "tinydb" / "jobs.json"),
                       "output_dir": str(folder / "tinydb" / "results") + "/"},
        }  # fmt: skip
        results = {}
        for name, manager in managers.items():
            sub = folder / name
            (sub / "results").mkdir(parents=True, exist_ok=True)
            port = free_port()
            config = write_config(sub, f"http://127.0.0.1:{port}", manager)
            openapi = sub / "openapi.yml"
            write_openapi(config, openapi)
            server = Server(sub, config, openapi, port)
            try:
                results[name] = measure(name, server, args.runs, args.sync_requests)
            finally:
                server.stop()

    cut, tiny = results["cut"], results["tinydb"]
    lines = [
        ("jobs_async200_seconds_cut", cut["async_seconds"], "s"),
        ("jobs_async200_seconds_tinydb", tiny["async_seconds"], "s"),
        ("jobs_async200_per_second_cut", JOBS / cut["async_seconds"], "jobs/s"),
        ("jobs_async200_per_second_tinydb", JOBS / tiny["async_seconds"], "jobs/s"),
        ("jobs_async200_throughput_ratio_vs_tinydb",
         tiny["async_seconds"] / cut["async_seconds"], "x"),
        ("jobs_sync_echo_median_ms_cut", cut["sync_ms"], "ms"),
        ("jobs_sync_echo_median_ms_tinydb", tiny["sync_ms"], "ms"),
        ("jobs_sync_echo_speed_ratio_vs_tinydb", tiny["sync_ms"] / cut["sync_ms"], "x"),
    ]  # fmt: skip
    for name, value, unit in lines:
        print(f"{name} {value:.3f} {unit}", flush=True)


if __name__ == "__main__":
    main()
