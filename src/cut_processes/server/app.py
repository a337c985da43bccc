"""The WSGI application: pygeoapi's Flask app plus health, limits and access logging.

pygeoapi builds its Flask app at import time of ``pygeoapi.flask_app`` from the
``PYGEOAPI_CONFIG`` / ``PYGEOAPI_OPENAPI`` environment variables. To get a real
application factory (several apps with different configurations in one process,
as the tests need), :func:`create_app` loads a fresh copy of that module for every
call instead of reusing the cached import.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from cut_processes.providers import http as features_http
from cut_processes.server import conformance, models, offline
from cut_processes.server.health import health_report
from cut_processes.settings import Settings

LOGGER = logging.getLogger("cut_processes.access")

_module_counter = itertools.count()


def _load_pygeoapi_flask_module(config_path: Path, openapi_path: Path) -> Any:
    """Import a private copy of ``pygeoapi.flask_app`` bound to the given files."""
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
    spec = importlib.util.find_spec("pygeoapi.flask_app")
    if spec is None or spec.origin is None:  # pragma: no cover - broken installation
        raise RuntimeError("pygeoapi is not installed")
    name = f"cut_processes._pygeoapi_app_{next(_module_counter)}"
    module_spec = importlib.util.spec_from_file_location(name, spec.origin)
    module = importlib.util.module_from_spec(module_spec)
    # Flask locates its root path (templates, static files) through sys.modules.
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def _configure_access_log() -> None:
    """Access lines go to stderr at INFO, whatever level pygeoapi's logging config sets."""
    if LOGGER.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(os.environ.get("CUT_ACCESS_LOG_LEVEL", "INFO"))
    LOGGER.propagate = False


def _prepare_results_store() -> None:
    """Results collections need their (empty) tables and a location the config can read."""
    from cut_processes.processes.publish import prepare_results_store

    try:
        prepare_results_store()
    except Exception as err:  # a read-only store: serve the rest, /health names the problem
        logging.getLogger(__name__).warning("results store not prepared: %s", err)


def ogc_exception(status: int, type_: str, title: str, detail: str) -> Response:
    """An OGC API exception body (RFC 7807 style) as a JSON response."""
    response = jsonify({"type": type_, "title": title, "status": status, "detail": detail})
    response.status_code = status
    return response


def create_app(
    config_path: str | Path | None = None,
    openapi_path: str | Path | None = None,
    settings: Settings | None = None,
) -> Flask:
    """Build the WSGI app.

    :param config_path: pygeoapi configuration; default ``$PYGEOAPI_CONFIG`` or
        ``pygeoapi-config.yml`` in the working directory.
    :param openapi_path: OpenAPI document; default ``$PYGEOAPI_OPENAPI`` or
        ``openapi/openapi.yml``.
    :param settings: suite settings; default read from the environment now (not at import).
    """
    settings = settings or Settings.from_env()
    config_path = Path(
        config_path or os.environ.get("PYGEOAPI_CONFIG") or "pygeoapi-config.yml"
    ).resolve()
    openapi_path = Path(
        openapi_path or os.environ.get("PYGEOAPI_OPENAPI") or "openapi/openapi.yml"
    ).resolve()
    if not config_path.is_file():
        raise FileNotFoundError(f"pygeoapi configuration not found: {config_path}")
    if not openapi_path.is_file():
        raise FileNotFoundError(
            f"OpenAPI document not found: {openapi_path} (run `cut-twin openapi`)"
        )

    _configure_access_log()
    _prepare_results_store()
    module = _load_pygeoapi_flask_module(config_path, openapi_path)
    app: Flask = module.APP
    app.config["CUT_SETTINGS"] = settings
    app.config["CUT_PYGEOAPI"] = module.api_
    # Werkzeug enforces the limit for bodies without Content-Length (chunked uploads).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.before_request
    def _limit_body_and_start_clock() -> Response | None:
        g.cut_started = time.perf_counter()
        length = request.content_length
        if length is not None and length > settings.max_body_bytes:
            return _too_large(length)
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large_handler(_err: RequestEntityTooLarge) -> Response:
        return _too_large(request.content_length)

    def _too_large(length: int | None) -> Response:
        size = f"{length} bytes" if length is not None else "the request body"
        return ogc_exception(
            413,
            "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/payload-too-large",
            "Payload Too Large",
            f"{size} exceeds the limit of {settings.max_body_bytes} bytes "
            "(CUT_MAX_BODY_BYTES); send large inputs by reference (href or collection).",
        )

    @app.after_request
    def _access_log(response: Response) -> Response:
        # Method, path, status and duration only: bodies may hold personal data.
        started = g.get("cut_started")
        millis = (time.perf_counter() - started) * 1000 if started else -1.0
        # Query parameter names only: values (filters, ids) may hold personal data.
        names = ",".join(sorted(request.args.keys()))
        LOGGER.info(
            "%s %s %s%s %d %.1fms",
            request.remote_addr,
            request.method,
            request.path,
            f" ?{names}" if names else "",
            response.status_code,
            millis,
        )
        return response

    # pygeoapi's managers write results into output_dir without creating it.
    output_dir = getattr(module.api_.manager, "output_dir", None)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)

    conformance.install(app)
    # OGC API - Features: CQL2 filters (parsing, errors that name the problem), transactions
    # (405 on read-only collections, PATCH), the conformance classes QGIS checks before it
    # sends filters, and rel="conformance" in both spellings on the landing page.
    # See cut_processes/providers/http.py.
    features_http.install(app, module.api_)
    conformance.declare_conformance(app, *features_http.conformance_classes(module.api_.config))
    # Plugins (the job engine, providers) hook their routes and conformance classes in here.
    register = getattr(module.api_.manager, "register_routes", None)
    if register is not None:
        register(app, module.api_)

    models.install(app, module.api_.config["server"]["url"])
    offline.install(app, module.api_.config["server"]["url"])

    @app.get("/health")
    def _health() -> Response:
        report = health_report(module.api_)
        response = jsonify(report)
        response.status_code = 200 if report["status"] == "ok" else 503
        return response

    return app
