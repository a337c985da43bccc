"""``CutManager``: pygeoapi's process manager, backed by the job store and the supervisor.

The web worker never runs a job. It validates the request, inserts the job (``accepted``)
into the store, nudges the supervisor and either answers at once (async) or waits for the
job's final state in the store (sync, up to ``sync_timeout``). The supervisor (one per host
and store, started here on demand) runs the jobs in worker processes.

pygeoapi's manager methods (``get_jobs``, ``add_job``, ``update_job``, ``get_job``,
``get_job_result``, ``delete_job``, ``execute_process``) are implemented over the store, so
pygeoapi's own code paths keep working; the suite's app replaces pygeoapi's job routes by
those of :mod:`cut_processes.jobs.api` (``register_routes``), which implement the full
OGC behaviour (filters, dismiss, error mapping).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pygeoapi.process.base import (
    JobNotFoundError,
    JobResultNotFoundError,
    ProcessorExecuteError,
    UnknownProcessError,
)
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedProcessExecutionMode, Subscriber

from cut_processes.jobs import errors
from cut_processes.jobs.config import EngineSettings, process_timeout
from cut_processes.jobs.errors import JobEngineError, Problem
from cut_processes.jobs.node import acquire_lock, lock_holder, pid_alive
from cut_processes.jobs.results import is_json, read_result, remove_job_files
from cut_processes.jobs.status import pygeoapi_job
from cut_processes.jobs.store import (
    ACCEPTED,
    DISMISSED,
    FINAL,
    RUNNING,
    SUCCESSFUL,
    JobFilter,
    JobStore,
    open_store,
)
from cut_processes.jobs.store import now as store_now

LOGGER = logging.getLogger(__name__)

KEEPER_INTERVAL = 2.0  # seconds between two checks that a supervisor runs
SYNC_POLL_MAX = 0.1  # the longest pause between two looks at a sync job


def server_owner_pid() -> int:
    """The process whose life the supervisor follows: gunicorn's master, or this one."""
    ppid = os.getppid()
    if "gunicorn" in sys.modules:
        try:
            parent_cmdline = Path(f"/proc/{ppid}/cmdline").read_bytes()
        except OSError:
            parent_cmdline = b""
        if b"gunicorn" in parent_cmdline:
            return ppid
    return os.getpid()


class _PygeoapiFacingError(ProcessorExecuteError):
    """A problem in the shape pygeoapi's ``execute_process`` turns into a response."""

    def __init__(self, problem: Problem):
        super().__init__(problem.detail, user_msg=problem.detail)
        self.http_status_code = problem.status
        self.ogc_exception_code = problem.title.replace(" ", "")


def _epoch(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class CutManager(BaseManager):
    """The suite's job engine as a pygeoapi manager (``cut_processes.jobs.CutManager``)."""

    def __init__(self, manager_def: dict[str, Any]):
        super().__init__(manager_def)
        self.is_async = True
        self.supports_subscribing = True
        # Nothing is opened or started here: pygeoapi also builds managers just to write
        # the OpenAPI document.
        self.settings = EngineSettings.from_manager_def(manager_def)
        self.connection = self.settings.connection
        self.output_dir = self.settings.output_dir
        self._store: JobStore | None = None
        self._store_lock = threading.Lock()
        self._spawn_lock = threading.Lock()
        self._spawned: subprocess.Popen | None = None
        self._keeper_pid: int | None = None
        self._keeper_stop = threading.Event()
        self._wake: socket.socket | None = None
        self._wake_pid: int | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"<CutManager {self.name}>"

    @property
    def store(self) -> JobStore:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = open_store(self.settings.connection)
        return self._store

    # -- the supervisor -------------------------------------------------------------------
    def start(self) -> None:
        """Make sure a supervisor runs, and keep checking from a background thread."""
        if self.settings.supervisor == "external":
            return
        self._stopped = False
        self.ensure_supervisor()
        if self._keeper_pid != os.getpid():
            self._keeper_pid = os.getpid()
            self._keeper_stop.clear()
            threading.Thread(target=self._keep, name="cut-jobs-keeper", daemon=True).start()

    def _keep(self) -> None:
        while not self._keeper_stop.wait(KEEPER_INTERVAL):
            try:
                self.ensure_supervisor()
            except Exception as err:  # retried on the next round
                LOGGER.warning("cannot start the job supervisor: %s", err)

    def ensure_supervisor(self) -> None:
        """Start the supervisor of this host and store unless one holds its lock.

        With ``supervisor: external`` (a supervisor run as its own service) only check.
        """
        if self.settings.supervisor == "external":
            fd = acquire_lock(self.settings.lock_path)
            if fd is not None:
                os.close(fd)
                raise RuntimeError(
                    f"no job supervisor holds {self.settings.lock_path} "
                    "(server.manager.supervisor is 'external': start it as a service)"
                )
            return
        with self._spawn_lock:
            if self._stopped:
                return
            if self._spawned is not None and self._spawned.poll() is not None:
                self._spawned = None  # reaped
            fd = acquire_lock(self.settings.lock_path)
            if fd is None:
                return
            try:
                self._spawned = self._spawn(fd)
            finally:
                os.close(fd)  # the supervisor holds the lock through its inherited copy

    def _spawn(self, lock_fd: int) -> subprocess.Popen:
        settings = self.settings
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        definition = settings.var_dir / f"jobs-supervisor-{settings.node_key}.json"
        partial = definition.with_suffix(f".{os.getpid()}.tmp")
        content = json.dumps(
            {"manager": settings.as_manager_def(), "processes": self.processes}, default=str
        )
        # Process configurations may hold credentials: readable by the owner only.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        partial.replace(definition)
        argv = [
            sys.executable, "-m", "cut_processes.jobs.supervisor",
            "--manager-def", str(definition),
            "--parent-pid", str(server_owner_pid()),
            "--lock-fd", str(lock_fd),
        ]  # fmt: skip
        with settings.log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, pass_fds=(lock_fd,), start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        LOGGER.info("started job supervisor %d (log %s)", process.pid, settings.log_path)
        return process

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop this node's supervisor (it fails its running jobs as interrupted).

        For tests and embedding; a server normally leaves that to the supervisor noticing
        its server is gone.
        """
        self._keeper_stop.set()
        self._keeper_pid = None
        with self._spawn_lock:  # no keeper round may start a new one meanwhile
            self._stopped = True
            pid = lock_holder(self.settings.lock_path)
            with contextlib.suppress(FileNotFoundError):
                self.settings.lock_path.unlink()
        deadline = time.monotonic() + timeout
        while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
            if self._spawned is not None and self._spawned.poll() is not None:
                break
            time.sleep(0.05)
        if self._spawned is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._spawned.wait(max(0.1, deadline - time.monotonic()))
            self._spawned = None
        if self._store is not None:
            self._store.close()

    def _nudge(self) -> None:
        """Tell the local supervisor there is news (new job, dismissal); best effort."""
        try:
            if self._wake is None or self._wake_pid != os.getpid():
                self._wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._wake.setblocking(False)
                self._wake_pid = os.getpid()
            self._wake.sendto(b"!", self.settings.wakeup_address)
        except OSError:  # no local supervisor listening: it will poll
            pass

    def ping(self) -> None:
        """Health check: the store answers (and a supervisor is started if none runs)."""
        self.store.ping()
        self.ensure_supervisor()

    def register_routes(self, app: Any, api: Any) -> None:
        """Install the job routes in the suite's Flask app and start the engine."""
        from cut_processes.jobs.api import install_routes

        install_routes(app, api, self)
        self.start()

    # -- the engine's own operations ------------------------------------------------------
    def submit(
        self,
        process_id: str,
        inputs: dict[str, Any],
        *,
        outputs: Any = None,
        response: str = "raw",
        subscriber: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Check the inputs and queue a job; returns the stored job.

        :raises JobEngineError: unknown process (404), invalid inputs (400/413), queue
            full (429 with ``Retry-After``).
        """
        if process_id not in self.processes:
            raise JobEngineError(errors.no_such_process(process_id))
        processor = self.get_processor(process_id)
        check_inputs = getattr(processor, "check_inputs", None)
        if check_inputs is not None:
            try:
                check_inputs(inputs)
            except ProcessorExecuteError as err:
                raise JobEngineError(errors.problem_from_exception(err)) from err
        now = store_now()
        job = {
            "job_id": str(uuid.uuid4()),
            "process_id": process_id,
            "type": "process",
            "status": ACCEPTED,
            "message": "Job accepted; waiting for a worker",
            "progress": 0,
            "created": now,
            "updated": now,
            "request": {"inputs": inputs, "outputs": outputs, "response": response},
            "subscriber": subscriber or None,
            "timeout": process_timeout(self.settings, self.processes[process_id]),
        }
        if not self.store.add(job, max_queued=self.settings.max_queued):
            raise JobEngineError(
                errors.queue_full(self.settings.max_queued),
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        self._nudge()
        if self._keeper_pid != os.getpid():
            # Not started by the suite's app (pygeoapi's stock app, or a forked server
            # process): make sure a supervisor runs for this process too.
            self.start()
        job.pop("request")
        return job

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Wait up to ``timeout`` seconds for a final state; the job as it then is."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            job = self.store.get(job_id)
            if job is None or job["status"] in FINAL:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                return job
            # Reads are cheap: look often while short jobs finish, then back off.
            time.sleep(min(delay, left))
            delay = min(delay * 1.3, SYNC_POLL_MAX)

    def job(self, job_id: str, with_result: bool = False) -> dict[str, Any]:
        job = self.store.get(job_id, with_result=with_result)
        if job is None:
            raise JobEngineError(errors.no_such_job(job_id))
        return job

    def dismiss(self, job_id: str) -> dict[str, Any]:
        """Cancel an active job, or delete a finished one with its results.

        :returns: the job as it is now (``dismissed``).
        :raises JobEngineError: 404 if there is no such job.
        """
        now = store_now()
        for status, message in (
            (ACCEPTED, "Job dismissed before it started"),
            (RUNNING, "Job dismissed while running; its worker is stopped"),
        ):
            job = self.store.update_returning(
                job_id,
                {"status": DISMISSED, "finished": now, "updated": now, "message": message,
                 "request": None},
                status_in=[status],
            )  # fmt: skip
            if job is not None:
                self._nudge()
                return job
        job = self.store.get(job_id)
        if job is None or self.store.delete(job_id) is None:
            raise JobEngineError(errors.no_such_job(job_id))
        remove_job_files(self.settings, job_id, job.get("result_path"))
        return {**job, "status": DISMISSED, "updated": now,
                "message": "Job and its results removed"}  # fmt: skip

    def list_jobs(self, flt: JobFilter) -> tuple[list[dict[str, Any]], int]:
        return self.store.list(flt)

    # -- pygeoapi's manager interface -----------------------------------------------------
    def get_jobs(self, status: JobStatus = None, limit: int | None = None,
                 offset: int | None = None) -> dict:  # fmt: skip
        flt = JobFilter(
            statuses=[status.value] if status is not None else [],
            limit=limit or 10, offset=offset or 0,
        )  # fmt: skip
        jobs, total = self.store.list(flt)
        return {"jobs": [pygeoapi_job(j) for j in jobs], "numberMatched": total}

    _PYGEOAPI_KEYS: ClassVar[dict[str, str]] = {
        "identifier": "job_id", "process_id": "process_id", "type": "type",
        "status": "status", "message": "message", "progress": "progress",
        "created": "created", "started": "started", "finished": "finished",
        "updated": "updated", "mimetype": "mimetype", "location": "result_path",
    }  # fmt: skip

    def _from_pygeoapi(self, metadata: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for key, value in metadata.items():
            column = self._PYGEOAPI_KEYS.get(key)
            if column is None:
                continue
            if column in ("created", "started", "finished", "updated"):
                value = _epoch(value)
            elif column == "progress":
                value = int(value or 0)
            fields[column] = value
        return fields

    def add_job(self, job_metadata: dict) -> str:
        fields = self._from_pygeoapi(job_metadata)
        fields.setdefault("job_id", str(uuid.uuid4()))
        fields.setdefault("type", "process")
        fields.setdefault("created", store_now())
        self.store.add(fields)
        return fields["job_id"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        fields = self._from_pygeoapi(update_dict)
        fields.pop("job_id", None)
        return bool(fields) and self.store.update(job_id, fields)

    def get_job(self, job_id: str) -> dict:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return pygeoapi_job(job)

    def get_job_result(self, job_id: str) -> tuple[str, Any]:
        job = self.store.get(job_id, with_result=True)
        if job is None:
            raise JobNotFoundError(job_id)
        if job["status"] != SUCCESSFUL:
            return (None,)  # type: ignore[return-value]  # pygeoapi's convention
        mimetype, payload = read_result(job)
        if is_json(mimetype):
            try:
                return mimetype, json.loads(payload)
            except ValueError as err:
                raise JobResultNotFoundError(job_id) from err
        return mimetype, payload

    def delete_job(self, job_id: str) -> bool:
        try:
            self.dismiss(job_id)
        except JobEngineError as err:
            raise JobNotFoundError(job_id) from err
        return True

    def execute_process(
        self,
        process_id: str,
        data_dict: dict,
        execution_mode: RequestedProcessExecutionMode | None = None,
        requested_outputs: dict | None = None,
        subscriber: Subscriber | None = None,
        requested_response: str | None = "raw",
    ) -> tuple[str, Any, Any, JobStatus, dict[str, str] | None]:
        if process_id not in self.processes:
            raise UnknownProcessError(f"there is no process '{process_id}'")
        subscriber_dict = None
        if subscriber is not None:
            subscriber_dict = {
                "successUri": subscriber.success_uri,
                "inProgressUri": subscriber.in_progress_uri,
                "failedUri": subscriber.failed_uri,
            }
        try:
            job = self.submit(
                process_id, data_dict or {}, outputs=requested_outputs,
                response=requested_response or "raw", subscriber=subscriber_dict,
            )  # fmt: skip
        except JobEngineError as err:
            raise _PygeoapiFacingError(err.problem) from err
        job_id = job["job_id"]
        if execution_mode == RequestedProcessExecutionMode.respond_async:
            headers = {"Preference-Applied": RequestedProcessExecutionMode.respond_async.value}
            return job_id, "application/json", None, JobStatus.accepted, headers
        final = self.wait(job_id, self.settings.sync_timeout)
        if final is None or final["status"] not in FINAL:
            url = f"/jobs/{job_id}"
            raise _PygeoapiFacingError(errors.sync_timeout(job_id, self.settings.sync_timeout, url))
        if final["status"] == SUCCESSFUL:
            mimetype, result = self.get_job_result(job_id)
            if requested_response == "document":
                result = {"outputs": [result]}
            return job_id, mimetype, result, JobStatus.successful, None
        problem = (
            Problem.from_dict(final["error"]) if final.get("error")
            else errors.job_dismissed(job_id)
        )  # fmt: skip
        return job_id, "application/json", problem.body(), JobStatus.failed, None
