"""One job in one worker process: forked by the supervisor, gone when the job is.

The worker marks its job ``running`` when it really starts, runs the processor with a
progress callback that writes to the store (at most about four times a second), stores the
result or the error and sends the subscriber callbacks. Every write is conditional on the
job's claim token and status, so a dismissed or timed-out job stays as the supervisor left
it, whatever this process still does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from pygeoapi.plugin import load_plugin

from cut_processes.jobs.callbacks import Callbacks
from cut_processes.jobs.config import EngineSettings
from cut_processes.jobs.errors import problem_from_exception
from cut_processes.jobs.results import encode_result, is_json, remove_job_files, result_fields
from cut_processes.jobs.store import ACCEPTED, FAILED, RUNNING, SUCCESSFUL, JobStore, open_store
from cut_processes.jobs.store import now as store_now

LOGGER = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between two progress writes of one job
PR_SET_PDEATHSIG = 1


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()  # loaded once in the supervisor, inherited by every fork


def die_with_parent() -> None:
    """Ask Linux to kill this process when the supervisor dies (no orphaned jobs)."""
    if _LIBC is None:
        return
    try:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except AttributeError:  # not fatal: the claim token guards the store anyway
        LOGGER.debug("prctl(PR_SET_PDEATHSIG) unavailable")


def allows_internal_requests(process_conf: dict[str, Any]) -> bool:
    processor_def = process_conf.get("processor") or {}
    return bool(
        process_conf.get("allow_internal_requests") or processor_def.get("allow_internal_requests")
    )


class ProgressWriter:
    """The processor's ``progress(percent, message)`` sink: throttled writes to the store."""

    def __init__(self, store: JobStore, job_id: str, claim: str):
        self.store = store
        self.job_id = job_id
        self.claim = claim
        self._pending: tuple[int, str] | None = None
        self._last_write = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self._flusher.start()

    def __call__(self, percent: float, message: str) -> None:
        with self._lock:
            self._pending = (int(percent), str(message)[:500])
            due = time.monotonic() - self._last_write >= PROGRESS_INTERVAL
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is None:
                return
            self._last_write = time.monotonic()
        percent, message = pending
        try:
            self.store.update(
                self.job_id,
                {"progress": max(0, min(100, percent)), "message": message,
                 "updated": store_now()},
                status_in=[RUNNING], claim=self.claim,
            )  # fmt: skip
        except Exception as err:  # progress is best effort; the job goes on
            LOGGER.warning("job %s: progress not stored: %s", self.job_id, type(err).__name__)

    def _flush_loop(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL):
            self.flush()

    def stop(self) -> None:
        self._stop.set()


def run_job(settings: EngineSettings, process_conf: dict[str, Any], job: dict[str, Any]) -> None:
    """Body of a worker process (the target of the supervisor's fork)."""
    die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store = open_store(settings.connection, schema_ready=True)
    job_id, claim, process_id = job["job_id"], job["claim"], job["process_id"]
    now = store_now()
    started = store.update(
        job_id,
        {"status": RUNNING, "started": now, "updated": now, "worker_pid": os.getpid(),
         "message": "running", "progress": 0},
        status_in=[ACCEPTED], claim=claim,
    )  # fmt: skip
    if not started:  # dismissed (or released) between claim and start
        return
    callbacks = Callbacks(
        store, job_id, job.get("subscriber"), allows_internal_requests(process_conf)
    )
    in_progress: threading.Thread | None = None
    if callbacks.subscriber.get("inProgressUri"):
        # Sent alongside the analysis, and finished before the final callback is sent.
        body = {"jobID": job_id, "processID": process_id, "status": RUNNING, "progress": 0}
        in_progress = threading.Thread(target=callbacks.in_progress, args=(body,), daemon=True)
        in_progress.start()
    request = job.get("request") or {}
    progress: ProgressWriter | None = None
    try:
        processor = load_plugin("process", process_conf["processor"])
        processor.allow_internal_requests = allows_internal_requests(process_conf)
        processor.set_job_id(job_id)
        # Documented for processors: the folder for partial outputs, removed on cancel.
        processor.job_dir = settings.job_dir(job_id)
        if hasattr(processor, "set_progress_callback"):
            progress = ProgressWriter(store, job_id, claim)
            processor.set_progress_callback(progress)
        kwargs = {"outputs": request.get("outputs")} if processor.supports_outputs else {}
        mimetype, outputs = processor.execute(request.get("inputs") or {}, **kwargs)
        if progress is not None:
            progress.stop()
            progress.flush()
        mimetype, payload = encode_result(mimetype, outputs)
        fields = result_fields(settings, job_id, mimetype, payload)
        done = store_now()
        fields.update(
            status=SUCCESSFUL, finished=done, updated=done, progress=100,
            message="Job complete", request=None,
        )  # fmt: skip
        if not store.update(job_id, fields, status_in=[RUNNING], claim=claim):
            remove_job_files(settings, job_id)  # dismissed or timed out meanwhile
            return
        if in_progress is not None:
            in_progress.join()
        callbacks.success(mimetype, payload, is_json(mimetype))
    except Exception as err:
        if progress is not None:
            progress.stop()
        problem = problem_from_exception(err, job_id)
        done = store_now()
        failed = store.update(
            job_id,
            {"status": FAILED, "finished": done, "updated": done, "message": problem.detail,
             "error": problem.as_dict(), "request": None},
            status_in=[RUNNING], claim=claim,
        )  # fmt: skip
        if failed:
            if in_progress is not None:
                in_progress.join()
            callbacks.failed({**problem.body(), "jobID": job_id})
    finally:
        store.close()
