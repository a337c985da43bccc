"""HTTP client for one OGC API - Processes server: list, describe, execute async, poll,
cancel, results.

Plain ``urllib`` (no third-party imports: this runs in QGIS's own Python). Credentials come
from QGIS's authentication manager through :class:`AuthHeaders`, never from plain settings.
Every failure is raised as :class:`ServerError` with a message meant for the user: the
``detail`` of an OGC exception body, or what went wrong with the connection.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

#: Seconds a single request may take before the server counts as "slow".
DEFAULT_TIMEOUT = 30.0
#: Seconds between two polls of a running job.
POLL_INTERVAL = 0.5
FINAL_STATES = ("successful", "failed", "dismissed")


class ServerError(Exception):
    """A request failed: ``status`` is the HTTP status (``None`` when there was no answer)."""

    def __init__(self, message: str, status: int | None = None,
                 body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


class JobCancelled(Exception):
    """The job was cancelled by the user (and dismissed on the server)."""


def exception_message(status: int | None, body: Any, fallback: str = "") -> str:
    """A readable message from an OGC exception body ``{type, title, status, detail}``."""
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("description")
        title = body.get("title") or ""
        code = body.get("status") or status
        if detail:
            return f"{title} ({code}): {detail}" if title else f"HTTP {code}: {detail}"
        if title:
            return f"{title} ({code})"
    if fallback:
        return f"HTTP {status}: {fallback[:500]}"
    return f"HTTP {status}"


class AuthHeaders:
    """Headers for a server, built from a QGIS authentication configuration id.

    ``mode`` is ``bearer`` (``Authorization: Bearer <secret>``), ``header:<Name>``
    (``<Name>: <secret>``, for API keys) or ``basic`` / ``auto``. For ``bearer`` and
    ``header:`` the secret is the password of a *Basic* auth configuration (QGIS 3.22 has no
    API-header method); with ``auto`` QGIS itself applies the configuration (Basic, or
    *API Header* on QGIS 3.26+).
    """

    def __init__(self, authcfg: str = "", mode: str = "auto"):
        self.authcfg = authcfg or ""
        self.mode = mode or "auto"

    def headers(self) -> dict[str, str]:
        if not self.authcfg:
            return {}
        from qgis.core import QgsApplication, QgsAuthMethodConfig

        manager = QgsApplication.authManager()
        if self.mode == "bearer" or self.mode.startswith("header:"):
            config = QgsAuthMethodConfig()
            if not manager.loadAuthenticationConfig(self.authcfg, config, True):
                raise ServerError(f"authentication configuration {self.authcfg!r} not found")
            secret = config.config("password") or config.config("token") or ""
            if self.mode == "bearer":
                return {"Authorization": f"Bearer {secret}"}
            return {self.mode.split(":", 1)[1].strip(): secret}
        # Let the auth method fill a QNetworkRequest, then copy its headers.
        from qgis.PyQt.QtCore import QUrl
        from qgis.PyQt.QtNetwork import QNetworkRequest

        request = QNetworkRequest(QUrl("http://localhost/"))
        result = manager.updateNetworkRequest(request, self.authcfg)
        if isinstance(result, tuple):  # PyQGIS returns (ok, request)
            ok, request = result[0], result[1]
            if not ok:
                raise ServerError(f"authentication configuration {self.authcfg!r} failed")
        return {
            bytes(name).decode("latin-1"): bytes(request.rawHeader(name)).decode("latin-1")
            for name in request.rawHeaderList()
        }


class ProcessesClient:
    """One server: ``base_url`` is its landing page, e.g. ``http://127.0.0.1:5000``."""

    def __init__(self, base_url: str, auth: AuthHeaders | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.auth = auth or AuthHeaders()
        self.timeout = timeout

    # -- plumbing ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None,
                timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send one request; answers (status, headers, body) or raises :class:`ServerError`."""
        url = self.url(path)
        data = None
        all_headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(self.auth.headers())
        all_headers.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        limit = self.timeout if timeout is None else timeout
        try:
            with urllib.request.urlopen(req, timeout=limit) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            raw = err.read() if err.fp is not None else b""
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except ValueError:
                parsed = None
            message = exception_message(err.code, parsed, raw.decode("utf-8", "replace").strip())
            raise ServerError(
                message, err.code, parsed if isinstance(parsed, dict) else None) from None
        except (socket.timeout, TimeoutError) as err:
            raise ServerError(
                f"the server at {self.base_url} did not answer {method} {url} within "
                f"{limit:g} s (it may be overloaded or down)") from err
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise ServerError(
                    f"the server at {self.base_url} did not answer {method} {url} within "
                    f"{limit:g} s (it may be overloaded or down)") from err
            raise ServerError(
                f"cannot reach the server at {self.base_url} ({reason}); is it running and "
                f"is the URL right?") from err
        except OSError as err:
            raise ServerError(f"connection to {self.base_url} failed: {err}") from err

    def get_json(self, path: str, timeout: float | None = None) -> Any:
        _, _, raw = self.request("GET", path, timeout=timeout)
        return _json(raw, self.url(path))

    # -- OGC API - Processes -----------------------------------------------------------------
    def processes(self) -> list[dict[str, Any]]:
        """Process summaries of ``/processes`` (following ``next`` links)."""
        found: list[dict[str, Any]] = []
        path: str | None = "processes?limit=1000"
        while path:
            page = self.get_json(path)
            found.extend(page.get("processes", []))
            path = next((link["href"] for link in page.get("links", [])
                         if link.get("rel") == "next" and link.get("href")), None)
            if len(found) > 10000:
                break
        return found

    def describe(self, process_id: str) -> dict[str, Any]:
        return self.get_json(f"processes/{urllib.parse.quote(process_id)}")

    def submit(self, process_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Start an async job; answers its statusInfo (with ``jobID``)."""
        path = f"processes/{urllib.parse.quote(process_id)}/execution"
        status, headers, raw = self.request(
            "POST", path, {"inputs": inputs}, headers={"Prefer": "respond-async"})
        info = _json(raw, self.url(path)) if raw else {}
        if not isinstance(info, dict):
            info = {}
        location = {k.lower(): v for k, v in headers.items()}.get("location", "")
        if not info.get("jobID") and location:
            info["jobID"] = location.rstrip("/").rsplit("/", 1)[-1]
        if status == 200 and not info.get("jobID"):
            # A server that ran the job synchronously: keep the result.
            return {"status": "successful", "jobID": None, "result": info}
        if not info.get("jobID"):
            raise ServerError(f"the server answered {status} without a job id or Location")
        info["location"] = location or self.url(f"jobs/{info['jobID']}")
        return info

    def status(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.get_json(job.get("location") or f"jobs/{job['jobID']}")

    def cancel(self, job_id: str) -> None:
        """``DELETE /jobs/{id}``: dismisses the job (errors are ignored: best effort)."""
        with contextlib.suppress(ServerError):
            self.request("DELETE", f"jobs/{urllib.parse.quote(job_id)}", timeout=10)

    def results(self, job_id: str) -> tuple[str, bytes]:
        """The job's results as (media type, raw bytes)."""
        _, headers, raw = self.request("GET", f"jobs/{urllib.parse.quote(job_id)}/results?f=json")
        media = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        return media.split(";")[0].strip(), raw

    def run(self, process_id: str, inputs: dict[str, Any],
            on_progress: Callable[[float | None, str], None],
            is_cancelled: Callable[[], bool],
            poll_interval: float = POLL_INTERVAL,
            on_job: Callable[[str], None] | None = None) -> tuple[str, bytes]:
        """Submit, poll until final, answer the results; cancel on the server when asked.

        ``on_progress(percent or None, message)`` is called when progress or message change.
        Raises :class:`JobCancelled` or :class:`ServerError` (a failed job's detail).
        """
        job = self.submit(process_id, inputs)
        if job.get("result") is not None and not job.get("jobID"):
            return "application/json", json.dumps(job["result"]).encode("utf-8")
        job_id = job["jobID"]
        if on_job:
            on_job(job_id)
        last: tuple[Any, Any] = (None, None)
        info = job
        failures = 0
        while True:
            if is_cancelled():
                self.cancel(job_id)
                raise JobCancelled(f"job {job_id} cancelled")
            state = info.get("status")
            key = (info.get("progress"), info.get("message"))
            if key != last:
                last = key
                progress = info.get("progress")
                on_progress(float(progress) if isinstance(progress, (int, float)) else None,
                            str(info.get("message") or ""))
            if state in FINAL_STATES:
                break
            time.sleep(poll_interval)
            try:
                info = self.status(job)
                failures = 0
            except ServerError as err:
                # A slow or restarting server gets a few chances before the job is given up.
                failures += 1
                if (err.status is not None and err.status != 503) or failures >= 5:
                    raise
        if state == "dismissed":
            raise JobCancelled(f"job {job_id} was dismissed on the server")
        if state == "failed":
            body = info.get("exception")
            if not isinstance(body, dict):
                try:
                    self.results(job_id)
                except ServerError as err:
                    raise ServerError(f"job {job_id} failed: {err}", err.status,
                                      err.body) from None
            raise ServerError(
                f"job {job_id} failed: "
                f"{exception_message(None, body, str(info.get('message') or ''))}",
                (body or {}).get("status") if isinstance(body, dict) else None, body)
        return self.results(job_id)


def _json(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as err:
        raise ServerError(f"{url} did not answer JSON ({err})") from err
