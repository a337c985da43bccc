"""Subscriber callbacks (OGC API - Processes ``callback``), sent by worker processes.

A callback never raises and never blocks the API: it is posted from the job's worker (or
a helper process of the supervisor) with a timeout, and a failure is written to the job's
``callback_error`` (shown as ``callbackError`` in its statusInfo) and logged.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from pygeoapi.util import is_request_allowed

from cut_processes.jobs.store import JobStore

LOGGER = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class Callbacks:
    """The subscriber URLs of one job."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        subscriber: dict[str, Any] | None,
        allow_internal: bool,
    ):
        self.store = store
        self.job_id = job_id
        self.subscriber = subscriber or {}
        self.allow_internal = allow_internal
        self.errors: list[str] = []

    def in_progress(self, body: dict[str, Any]) -> None:
        self._post("inProgressUri", json_body=body)

    def success(self, mimetype: str, payload: bytes, is_json: bool) -> None:
        if is_json:
            self._post("successUri", data=payload, content_type="application/json")
        else:
            self._post("successUri", data=payload, content_type=mimetype)

    def failed(self, body: dict[str, Any]) -> None:
        self._post("failedUri", json_body=body)

    def _post(
        self,
        key: str,
        json_body: dict[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        url = self.subscriber.get(key)
        if not url:
            return
        try:
            if not is_request_allowed(url, self.allow_internal):
                raise PermissionError(
                    "internal addresses are refused (set allow_internal_requests: true "
                    "on the process to allow them)"
                )
            if json_body is not None:
                response = requests.post(
                    url, json=json_body, timeout=TIMEOUT_SECONDS, allow_redirects=False
                )
            else:
                response = requests.post(
                    url, data=data, headers={"Content-Type": content_type or "application/json"},
                    timeout=TIMEOUT_SECONDS, allow_redirects=False,
                )  # fmt: skip
            if response.status_code >= 400:
                raise ConnectionError(f"it answered HTTP {response.status_code}")
        except Exception as err:  # every failure is reported on the job, never raised
            reason = str(err) or type(err).__name__
            message = f"callback {key} to {url} failed: {reason}"
            LOGGER.warning("job %s: %s", self.job_id, message)
            self.errors.append(message)
            try:
                self.store.update(self.job_id, {"callback_error": "; ".join(self.errors)})
            except Exception as store_err:
                LOGGER.warning("job %s: cannot record callback error: %s", self.job_id, store_err)


def send_failed_callback(
    connection: str, job_id: str, subscriber: dict[str, Any] | None, allow_internal: bool,
    body: dict[str, Any],
) -> None:  # fmt: skip
    """Entry point of the supervisor's helper process for a failure it detected itself."""
    from cut_processes.jobs.store import open_store

    store = open_store(connection)
    try:
        Callbacks(store, job_id, subscriber, allow_internal).failed(body)
    finally:
        store.close()
