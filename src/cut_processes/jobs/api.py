"""The job routes of OGC API - Processes, served by the job engine.

:func:`install_routes` swaps the view functions behind pygeoapi's own URL rules
(``/processes/<id>/execution``, ``/jobs``, ``/jobs/<id>``, ``/jobs/<id>/results``) for the
ones here, so routing, URL prefix and slash handling stay pygeoapi's, and declares the
conformance classes ``job-list``, ``dismiss`` and ``callback``. JSON is the default format;
HTML is answered for ``f=html`` or a browser's ``Accept`` header, with pygeoapi's templates.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from pygeoapi.util import render_j2_template

from cut_processes.jobs import errors
from cut_processes.jobs.errors import JobEngineError, Problem
from cut_processes.jobs.results import is_json, read_result
from cut_processes.jobs.status import parse_instant, status_info
from cut_processes.jobs.store import DISMISSED, FAILED, STATUSES, SUCCESSFUL, JobFilter
from cut_processes.server.conformance import declare_conformance

LOGGER = logging.getLogger(__name__)

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback",
)
VIEW_ENDPOINTS = {
    "execute": "pygeoapi.execute_process_jobs",
    "jobs": "pygeoapi.get_jobs",
    "results": "pygeoapi.get_job_result",
}
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
JOB_TYPES = ("process",)
SUBSCRIBER_KEYS = ("successUri", "inProgressUri", "failedUri")


# -- responses ------------------------------------------------------------------------------
def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    return json_response(problem.body(), problem.status, headers)


def wants_html() -> bool:
    """``f`` decides; without it, a browser's Accept header asks for HTML."""
    fmt = request.args.get("f")
    if fmt is not None:
        fmt = fmt.lower()
        if fmt == "html":
            return True
        if fmt in ("json", "jsonld"):
            return False
        raise JobEngineError(errors.bad_request(f"parameter 'f': {fmt!r} is not json or html"))
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


def install_routes(app: Flask, api: Any, manager: Any) -> None:
    """Serve the job routes of ``app`` (built by pygeoapi for ``api``) from ``manager``."""
    missing = [e for e in VIEW_ENDPOINTS.values() if e not in app.view_functions]
    if missing:
        raise RuntimeError(
            f"pygeoapi's job endpoints {missing} are missing: this pygeoapi version is not "
            "supported by cut_processes.jobs"
        )
    # pygeoapi's job list template reads server.limits.default_items unconditionally (and
    # pygeoapi caches the first template config it renders per process): fill it in now.
    limits = api.tpl_config["server"].setdefault("limits", {})
    limits.setdefault("default_items", DEFAULT_LIMIT)
    views = JobViews(api, manager)
    app.view_functions[VIEW_ENDPOINTS["execute"]] = views.guarded(views.execute)
    app.view_functions[VIEW_ENDPOINTS["jobs"]] = views.guarded(views.jobs)
    app.view_functions[VIEW_ENDPOINTS["results"]] = views.guarded(views.results)
    declare_conformance(app, *CONFORMANCE)


class JobViews:
    def __init__(self, api: Any, manager: Any):
        self.api = api
        self.manager = manager

    @property
    def base_url(self) -> str:
        return str(self.api.base_url).rstrip("/")

    def guarded(self, view: Any) -> Any:
        """Map every error to a problem response, once, here."""

        def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return view(*args, **kwargs)
            except JobEngineError as err:
                return problem_response(err.problem, err.headers)
            except Exception as err:
                return problem_response(errors.problem_from_exception(err))

        wrapper.__name__ = view.__name__
        return wrapper

    def render_html(self, template: str, data: dict[str, Any]) -> Response:
        html = render_j2_template(
            self.api.tpl_config, self.api.config["server"]["templates"], template, data,
            self.api.default_locale,
        )  # fmt: skip
        return Response(html, 200, mimetype="text/html")

    # -- POST /processes/<id>/execution ---------------------------------------------------
    def execute(self, process_id: str) -> Response:
        if process_id not in self.manager.processes:
            raise JobEngineError(errors.no_such_process(process_id))
        body = self._execute_request()
        # RFC 7240: comma separated preferences, each maybe with "=value" and ";params".
        prefer = {
            token.split(";")[0].split("=")[0].strip().lower()
            for value in request.headers.getlist("Prefer")
            for token in value.split(",")
        }
        controls = self.manager.get_processor(process_id).metadata.get(
            "jobControlOptions", ["sync-execute"]
        )
        run_async = "respond-async" in prefer or "sync-execute" not in controls
        job = self.manager.submit(
            process_id, body["inputs"], outputs=body.get("outputs"),
            response=body.get("response", "raw"), subscriber=body.get("subscriber"),
        )  # fmt: skip
        job_url = f"{self.base_url}/jobs/{job['job_id']}"
        if run_async:
            return json_response(
                status_info(job, self.base_url), 201,
                {"Location": job_url, "Preference-Applied": "respond-async"},
            )  # fmt: skip
        final = self.manager.wait(job["job_id"], self.manager.settings.sync_timeout)
        headers = {"Location": job_url}
        if final is None:  # deleted while we waited
            return problem_response(errors.job_dismissed(job["job_id"]), headers)
        if final["status"] == SUCCESSFUL:
            return self._result_response(final["job_id"], body.get("response", "raw"), headers)
        if final["status"] == FAILED:
            return problem_response(Problem.from_dict(final["error"]), headers)
        if final["status"] == DISMISSED:
            return problem_response(errors.job_dismissed(job["job_id"]), headers)
        timeout = self.manager.settings.sync_timeout
        return problem_response(errors.sync_timeout(job["job_id"], timeout, job_url), headers)

    def _execute_request(self) -> dict[str, Any]:
        raw = request.get_data()
        if not raw:
            raise JobEngineError(errors.bad_request(
                'the request body is empty; send a JSON object like {"inputs": {...}}'
            ))  # fmt: skip
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            # The decoder's message gives the position only, never the content.
            where = ""
            if isinstance(err, json.JSONDecodeError):
                where = f" ({err.msg} at line {err.lineno} column {err.colno})"
            raise JobEngineError(
                errors.bad_request(f"the request body is not valid JSON{where}")
            ) from err
        if not isinstance(body, dict):
            raise JobEngineError(errors.bad_request("the request body must be a JSON object"))
        if "inputs" not in body:
            raise JobEngineError(errors.bad_request(
                "the request body has no 'inputs'; send {\"inputs\": {...}}"
            ))  # fmt: skip
        if not isinstance(body["inputs"], dict):
            raise JobEngineError(errors.bad_request("'inputs' must be a JSON object"))
        if body.get("response", "raw") not in ("raw", "document"):
            raise JobEngineError(errors.bad_request("'response' must be 'raw' or 'document'"))
        subscriber = body.get("subscriber")
        if subscriber is not None:
            if not isinstance(subscriber, dict) or not isinstance(
                subscriber.get("successUri"), str
            ):
                raise JobEngineError(errors.bad_request(
                    "'subscriber' must be an object with at least a 'successUri'"
                ))  # fmt: skip
            for key in SUBSCRIBER_KEYS:
                value = subscriber.get(key)
                if value is not None and not (
                    isinstance(value, str) and value.startswith(("http://", "https://"))
                ):
                    raise JobEngineError(
                        errors.bad_request(f"'subscriber.{key}' must be an http(s) URL")
                    )
            body["subscriber"] = {k: subscriber.get(k) for k in SUBSCRIBER_KEYS}
        return body

    def _result_response(
        self, job_id: str, response_mode: str, headers: dict[str, str] | None = None
    ) -> Response:
        job = self.manager.job(job_id, with_result=True)
        mimetype, payload = read_result(job)
        if response_mode == "document":
            if is_json(mimetype):
                value: Any = json.loads(payload)
            elif mimetype.startswith("text/"):
                value = payload.decode("utf-8", errors="replace")
            else:
                value = {"href": f"{self.base_url}/jobs/{job_id}/results", "type": mimetype}
            return json_response({"outputs": [value]}, 200, headers)
        response = Response(payload, 200, mimetype=mimetype)
        if is_json(mimetype):
            response.headers["Content-Type"] = "application/json"
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    # -- /jobs, /jobs/<id> ----------------------------------------------------------------
    def jobs(self, job_id: str | None = None) -> Response:
        if job_id is None:
            return self._job_list()
        if request.method == "DELETE":
            job = self.manager.dismiss(job_id)
            return json_response(status_info(job, self.base_url))
        html = wants_html()
        info = status_info(self.manager.job(job_id), self.base_url)
        if html:
            data = {"jobs": {**info, "parameters": None}, "now": _now_text()}
            return self.render_html("jobs/job.html", data)
        return json_response(info)

    def _job_list(self) -> Response:
        html = wants_html()
        flt = parse_job_filter(request.args)
        jobs, total = self.manager.list_jobs(flt)
        infos = [status_info(job, self.base_url) for job in jobs]
        links = self._list_links(flt, total, len(infos))
        body = {"jobs": infos, "links": links, "numberMatched": total,
                "numberReturned": len(infos)}  # fmt: skip
        if html:
            return self.render_html(
                "jobs/index.html", {"jobs": body, "offset": flt.offset, "now": _now_text()}
            )
        return json_response(body)

    def _list_links(self, flt: JobFilter, total: int, returned: int) -> list[dict[str, str]]:
        kept = [(k, v) for k, v in request.args.items(multi=True) if k not in ("offset", "f")]

        def href(offset: int, fmt: str = "json") -> str:
            query = [*kept, ("offset", str(offset)), ("f", fmt)]
            return f"{self.base_url}/jobs?{urllib.parse.urlencode(query)}"

        links = [
            {"href": href(flt.offset), "rel": "self", "type": "application/json",
             "title": "This job list as JSON"},
            {"href": href(flt.offset, "html"), "rel": "alternate", "type": "text/html",
             "title": "This job list as HTML"},
        ]  # fmt: skip
        if flt.offset + returned < total:
            links.append({"href": href(flt.offset + flt.limit), "rel": "next",
                          "type": "application/json", "title": "Next jobs"})  # fmt: skip
        if flt.offset > 0:
            links.append({"href": href(max(0, flt.offset - flt.limit)), "rel": "prev",
                          "type": "application/json", "title": "Previous jobs"})  # fmt: skip
        return links

    # -- /jobs/<id>/results ---------------------------------------------------------------
    def results(self, job_id: str) -> Response:
        html = wants_html()
        job = self.manager.job(job_id)
        status = job["status"]
        if status == FAILED:
            return problem_response(Problem.from_dict(job["error"]))
        if status == DISMISSED:
            return problem_response(errors.job_dismissed(job_id))
        if status != SUCCESSFUL:
            return problem_response(errors.result_not_ready(job_id, status))
        if html:
            job = self.manager.job(job_id, with_result=True)
            mimetype, payload = read_result(job)
            if is_json(mimetype):
                data = {"job": {"id": job_id}, "result": json.loads(payload)}
                return self.render_html("jobs/results/index.html", data)
        return self._result_response(job_id, "raw")


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _int_param(args: Any, name: str, default: int, minimum: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise JobEngineError(
            errors.bad_request(f"parameter '{name}': {raw!r} is not an integer")
        ) from err
    if value < minimum:
        raise JobEngineError(
            errors.bad_request(f"parameter '{name}': must be at least {minimum}, got {value}")
        )
    return value


def _duration_param(args: Any, name: str) -> float | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError as err:
        raise JobEngineError(errors.bad_request(
            f"parameter '{name}': {raw!r} is not a number of seconds"
        )) from err  # fmt: skip
    if value < 0 or value != value:
        raise JobEngineError(
            errors.bad_request(f"parameter '{name}': must be zero or more seconds")
        )
    return value


def _datetime_param(raw: str | None) -> tuple[float | None, float | None]:
    """``datetime`` (instant or interval, open ends ``..`` or empty) as [from, to)."""
    if raw is None or raw.strip() == "":
        return None, None

    def instant(text: str) -> tuple[float, float]:
        try:
            return parse_instant(text)
        except ValueError as err:
            raise JobEngineError(errors.bad_request(
                f"parameter 'datetime': {text!r} is not an RFC 3339 date-time; use an "
                "instant or an interval such as 2024-05-01T00:00:00Z/.."
            )) from err  # fmt: skip

    if "/" not in raw:
        moment, resolution = instant(raw)
        return moment, moment + resolution
    start_text, _, end_text = raw.partition("/")
    start = None if start_text.strip() in ("", "..") else instant(start_text)[0]
    end = None
    if end_text.strip() not in ("", ".."):
        moment, resolution = instant(end_text)
        end = moment + resolution
    if start is not None and end is not None and start >= end:
        raise JobEngineError(
            errors.bad_request("parameter 'datetime': the interval ends before it starts")
        )
    return start, end


def parse_job_filter(args: Any) -> JobFilter:
    """The job-list query parameters; a bad value raises a 400 naming the parameter."""
    statuses = _split(args.getlist("status"))
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise JobEngineError(errors.bad_request(
            f"parameter 'status': {unknown[0]!r} is not one of {', '.join(STATUSES)}"
        ))  # fmt: skip
    types = _split(args.getlist("type"))
    bad_types = [t for t in types if t not in JOB_TYPES]
    if bad_types:
        raise JobEngineError(errors.bad_request(
            f"parameter 'type': {bad_types[0]!r} is not one of {', '.join(JOB_TYPES)}"
        ))  # fmt: skip
    created_from, created_to = _datetime_param(args.get("datetime"))
    min_duration = _duration_param(args, "minDuration")
    max_duration = _duration_param(args, "maxDuration")
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise JobEngineError(errors.bad_request(
            "parameter 'minDuration': is larger than 'maxDuration'"
        ))  # fmt: skip
    return JobFilter(
        process_ids=_split(args.getlist("processID")),
        statuses=statuses,
        types=types,
        created_from=created_from,
        created_to=created_to,
        min_duration=min_duration,
        max_duration=max_duration,
        limit=min(_int_param(args, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT),
        offset=_int_param(args, "offset", 0, 0),
    )
