"""Shared fixtures: the demo district, a Flask test client, and a live gunicorn server.

Everything is written into temporary folders; nothing lands in the source tree.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "pygeoapi-config.yml"
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_SEED = 42


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo district (seed 42), generated once per test session."""
    from cut_processes.demo import generate_district

    out = tmp_path_factory.mktemp("demo") / "district"
    generate_district(out, DEMO_SEED)
    return out


@dataclass
class ServerEnv:
    """Environment of one server instance: its folders, config and OpenAPI document."""

    var_dir: Path
    data_dir: Path
    config: Path
    openapi: Path
    url: str

    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "CUT_VAR_DIR": str(self.var_dir),
            "CUT_DATA_DIR": str(self.data_dir),
            "CUT_URL": self.url,
            "PYGEOAPI_CONFIG": str(self.config),
            "PYGEOAPI_OPENAPI": str(self.openapi),
        }


def make_server_env(tmp: Path, data_dir: Path, url: str) -> ServerEnv:
    from cut_processes.cli import write_openapi

    var_dir = tmp / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = ServerEnv(var_dir, data_dir, CONFIG, tmp / "openapi.yml", url)
    saved = dict(os.environ)
    try:
        os.environ.update(env.environ())
        write_openapi(CONFIG, env.openapi)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return env


@pytest.fixture(scope="session")
def app_env(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> ServerEnv:
    return make_server_env(tmp_path_factory.mktemp("app"), demo_dir, "http://localhost")


@pytest.fixture(scope="session")
def app(app_env: ServerEnv):
    """The WSGI app on the project's config, with temporary stores."""
    from cut_processes.server import create_app

    saved = dict(os.environ)
    os.environ.update(app_env.environ())
    try:
        application = create_app(app_env.config, app_env.openapi)
    finally:
        # pygeoapi read the config while building the app; later tests see a clean env.
        os.environ.clear()
        os.environ.update(saved)
    application.config["TESTING"] = True
    return application


@pytest.fixture()
def client(app):
    return app.test_client()


@dataclass
class LiveServer:
    url: str
    env: ServerEnv
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_live_server(env: ServerEnv, port: int, workers: int = 2) -> LiveServer:
    """gunicorn with the suite's app factory, as `cut-twin serve` starts it."""
    log = env.var_dir / f"server-{port}.log"
    argv = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", "4",
        "--timeout", "120",
        "cut_processes.server:create_app()",
    ]  # fmt: skip
    with log.open("wb") as fh:
        process = subprocess.Popen(argv, cwd=ROOT, env=env.environ(), stdout=fh, stderr=fh)
    server = LiveServer(env.url, env, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"{env.url}/health", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not become healthy: {log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[LiveServer]:
    """A real gunicorn server on a free port, shut down after the session."""
    port = free_port()
    env = make_server_env(tmp_path_factory.mktemp("live"), demo_dir, f"http://127.0.0.1:{port}")
    server = start_live_server(env, port)
    yield server
    server.stop()
