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
        except requests.RequestException:  # not listening yet, or still booting (slow)
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


# --- the job engine: configs, apps and live servers on temporary stores ------------------
# Used by tests/api/test_jobs*.py and tests/e2e/test_jobs*.py. Each app gets its own
# folder and its own store: a SQLite file, or a fresh schema in a PostgreSQL database that
# is created for the test session and dropped after it.

POSTGRES_ADMIN_URL = os.environ.get(
    "CUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Test-only processes (cut_processes.jobs.testing), never in the shipped config.
JOB_TEST_PROCESSES = {
    "sleep": {
        "type": "process",
        "allow_internal_requests": True,
        "processor": {"name": "cut_processes.jobs.testing.SleepProcessor"},
    },
    "sleep-limited": {
        "type": "process",
        "processor": {"name": "cut_processes.jobs.testing.SleepProcessor", "timeout": 1},
    },
    "crash": {
        "type": "process",
        "allow_internal_requests": True,
        "processor": {"name": "cut_processes.jobs.testing.CrashProcessor"},
    },
    "plain": {
        "type": "process",
        "processor": {"name": "cut_processes.jobs.testing.PlainProcessor"},
    },
}
# Faster heartbeats and sweeps than production, so recovery tests finish in seconds.
JOB_TEST_MANAGER = {"workers": 2, "heartbeat_interval": 0.5, "stale_after": 3}


def write_jobs_config(folder: Path, connection: str, url: str, **manager) -> Path:
    """The project's config with only processes (plus the test ones) and a temp job store."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    resources = {k: v for k, v in config["resources"].items() if v.get("type") == "process"}
    config["resources"] = {**resources, **JOB_TEST_PROCESSES}
    var_dir = folder / "var"
    config["server"]["url"] = url
    config["server"]["manager"] = {
        "name": "cut_processes.jobs.CutManager",
        "var_dir": str(var_dir),
        "connection": connection,
        "output_dir": str(var_dir / "results"),
        **JOB_TEST_MANAGER,
        **manager,
    }
    var_dir.mkdir(parents=True, exist_ok=True)
    path = folder / "pygeoapi-config.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


@pytest.fixture(scope="session")
def jobs_openapi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One OpenAPI document for every job test app (its content does not matter there)."""
    from cut_processes.cli import write_openapi

    folder = tmp_path_factory.mktemp("jobs-openapi")
    config = write_jobs_config(folder, "", "http://localhost")
    write_openapi(config, folder / "openapi.yml")
    return folder / "openapi.yml"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped after the session.

    Unreachable PostgreSQL fails the tests in CI (``CI=true``) and skips them elsewhere.
    """
    import secrets

    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        reason = (
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({err}); "
            "`make system-deps` starts the machine's PostgreSQL"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"cut_test_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def postgres_schema_url(database_url: str) -> str:
    """A new empty schema in the test database, as a URL whose search_path selects it."""
    import secrets

    import psycopg

    schema = f"jobs_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{database_url}?options=-csearch_path%3D{schema}"


@dataclass
class JobsEnv:
    """One job-engine deployment: config, store and folders (for an app or a server)."""

    folder: Path
    config: Path
    openapi: Path
    url: str
    connection: str

    @property
    def var_dir(self) -> Path:
        return self.folder / "var"

    @property
    def settings(self):
        from pygeoapi.util import yaml_load

        from cut_processes.jobs.config import EngineSettings

        with self.config.open(encoding="utf-8") as fh:
            return EngineSettings.from_manager_def(yaml_load(fh)["server"]["manager"])

    def store(self):
        from cut_processes.jobs.store import open_store

        return open_store(self.settings.connection)

    def server_env(self) -> ServerEnv:
        return ServerEnv(self.var_dir, self.folder / "no-data", self.config, self.openapi, self.url)


@pytest.fixture(scope="module")
def make_jobs_env(tmp_path_factory: pytest.TempPathFactory, jobs_openapi: Path, request):
    """``make_jobs_env(store, url=..., connection=None, **manager)`` -> JobsEnv.

    ``store`` is "sqlite" or "postgresql"; ``connection`` reuses another env's store.
    """

    def make(store: str = "sqlite", url: str = "http://localhost",
             connection: str | None = None, **manager) -> JobsEnv:
        folder = tmp_path_factory.mktemp(f"jobs-{store}")
        if connection is None:
            if store == "postgresql":
                connection = postgres_schema_url(request.getfixturevalue("postgres_url"))
            else:
                connection = str(folder / "var" / "jobs.db")
        config = write_jobs_config(folder, connection, url, **manager)
        return JobsEnv(folder, config, jobs_openapi, url, connection)

    return make


def create_jobs_app(env: JobsEnv):
    """The suite's app on a job env (the supervisor starts with it, owned by this process)."""
    from cut_processes.server import create_app

    saved = dict(os.environ)
    try:
        os.environ["CUT_URL"] = env.url
        application = create_app(env.config, env.openapi)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    application.config["TESTING"] = True
    return application


def stop_jobs_app(application) -> None:
    """Stop the app's supervisor (its running jobs end failed as interrupted)."""
    from pygeoapi import l10n

    application.config["CUT_PYGEOAPI"].manager.shutdown()
    # pygeoapi caches the first config it renders HTML with, per process and locale: drop
    # this app's, or later apps (with other resources) would render with it.
    l10n._cfg_cache.clear()


@pytest.fixture()
def make_jobs_app(make_jobs_env):
    """``make_jobs_app(store, **manager)`` -> (app, env); supervisors stop after the test."""
    apps = []

    def make(store: str = "sqlite", **manager):
        env = make_jobs_env(store, **manager)
        application = create_jobs_app(env)
        apps.append(application)
        return application, env

    yield make
    for application in apps:
        stop_jobs_app(application)


def wait_until(probe, done, timeout: float = 30.0, interval: float = 0.05, what: str = ""):
    """Call ``probe()`` until ``done(value)``; return the value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or done}: {value!r}")
        time.sleep(interval)
        value = probe()
    return value


def finished_job(client, response, timeout: float = 120.0) -> tuple[dict, dict]:
    """Poll the job of a ``201`` async response until it ends; its final status and results."""
    assert response.status_code == 201, response.get_data(as_text=True)
    job = "/jobs/" + response.headers["Location"].rsplit("/jobs/", 1)[1]
    status = wait_until(lambda: client.get(job + "?f=json").get_json(),
                        lambda s: s["status"] in ("successful", "failed", "dismissed"),
                        timeout=timeout, interval=0.1, what=f"job {job}")
    results = client.get(job + "/results?f=json").get_json() if (
        status["status"] == "successful") else {}
    return status, results


# --- importers and results collections (tests/unit/test_io_*, tests/realdata/test_import_*,
# tests/api/test_publish*) -----------------------------------------------------------------


@pytest.fixture(scope="session")
def io_shared_data() -> Path:
    """``../shared/data`` (the real datasets); skips when absent, fails when absent in CI."""
    if not SHARED_DATA.is_dir():
        reason = f"real datasets not found at {SHARED_DATA} (see ARCHITECTURE.md, Data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def io_results_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A results store with the empty results tables, for every app and server of the session.

    The configuration serves ``floor-count-results`` from ``$CUT_RESULTS_STORE``; pygeoapi
    describes the table when an app starts or the OpenAPI document is written, so it must
    exist (``cut-twin serve`` creates it the same way). Without this the default
    ``var/results.gpkg`` in the source tree would be used.
    """
    from cut_processes.processes.publish import ensure_results_collections

    store = tmp_path_factory.mktemp("results") / "results.gpkg"
    ensure_results_collections(store)
    saved = os.environ.get("CUT_RESULTS_STORE")
    os.environ["CUT_RESULTS_STORE"] = str(store)
    yield store
    if saved is None:
        os.environ.pop("CUT_RESULTS_STORE", None)
    else:
        os.environ["CUT_RESULTS_STORE"] = saved


# --- feature stores: hand-made features in a GeoPackage and in PostGIS ---------------------
# Used by tests/unit/test_provider_*.py, tests/unit/test_store*.py and tests/api/test_features*.
# The PostGIS database is created for the test session and dropped after it.

from feature_store_data import (  # noqa: E402  (tests/ is on sys.path, as for this file)
    POSTGIS_ADMIN_URL,
    STORE_PLACES_FIELDS,
    store_places,
)


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """A fresh database with PostGIS on the machine's PostgreSQL, dropped after the session.

    Unreachable PostgreSQL or missing PostGIS fails the tests in CI (``CI=true``) and skips them
    elsewhere, with the reason.
    """
    import secrets

    import psycopg

    def unavailable(reason: str) -> None:
        reason += "; `make system-deps` installs and starts PostgreSQL with PostGIS"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)

    try:
        admin = psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        unavailable(f"PostgreSQL is not reachable at {POSTGIS_ADMIN_URL} ({err})")
    name = f"cut_features_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {name}")
    url = POSTGIS_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
        except psycopg.Error as err:
            unavailable(f"PostGIS cannot be created in PostgreSQL ({err})")
        yield url
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="session")
def store_gpkg_places(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A GeoPackage with the places table, written by cut_processes.io.store."""
    from cut_processes.io.store import open_store

    path = tmp_path_factory.mktemp("store-gpkg") / "places.gpkg"
    open_store(path).replace_collection(
        "places", store_places(), fields=STORE_PLACES_FIELDS, geometry_type="Geometry"
    )
    return str(path)


@pytest.fixture(scope="session")
def postgis_places(postgis_url: str) -> str:
    """The PostGIS test database with the places table, written by cut_processes.io.store."""
    from cut_processes.io.store import open_store

    open_store(postgis_url).replace_collection(
        "places", store_places(), fields=STORE_PLACES_FIELDS, geometry_type="Geometry"
    )
    return postgis_url


@pytest.fixture(params=["geopackage", "postgis"])
def store_places_location(request) -> str:
    """The places table in each store: a GeoPackage path, then a postgresql:// URL."""
    if request.param == "geopackage":
        return request.getfixturevalue("store_gpkg_places")
    return request.getfixturevalue("postgis_places")


@pytest.fixture(scope="session")
def postgis_live_server(
    tmp_path_factory: pytest.TempPathFactory, demo_dir: Path, postgis_url: str
) -> Iterator[LiveServer]:
    """A live server whose feature collections are read from PostGIS (``CUT_STORE``)."""
    from cut_processes.io.store import load_demo_into

    load_demo_into(postgis_url, demo_dir)
    port = free_port()
    folder = tmp_path_factory.mktemp("live-postgis")
    env = make_server_env(folder, demo_dir, f"http://127.0.0.1:{port}")

    class PostGISServerEnv(ServerEnv):
        def environ(self) -> dict[str, str]:
            return {**super().environ(), "CUT_STORE": postgis_url}

    server = start_live_server(PostGISServerEnv(**vars(env)), port, workers=1)
    yield server
    server.stop()
