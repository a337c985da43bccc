"""The supervisor: one process per host and store that runs jobs in worker processes.

``python -m cut_processes.jobs.supervisor --config pygeoapi-config.yml`` runs it by hand (or
under systemd); normally the manager starts it (see :mod:`cut_processes.jobs.manager`).

It holds an exclusive ``flock`` on ``<var_dir>/jobs-supervisor-<key>.lock`` for its whole
life, so racing server processes start exactly one. Its loop claims accepted jobs up to its
free slots and forks one worker process per job; it watches them:

- a job ``dismissed`` in the store: SIGTERM, SIGKILL after a grace time, files removed;
- a worker that ends without a final status (kill -9, segfault, OOM): the job fails and
  says so, with the signal's name;
- a worker over the process's time limit: killed, the job fails naming the limit;
- heartbeats for its jobs every ``heartbeat_interval``; a sweep fails jobs of any node whose
  heartbeat is older than ``stale_after`` (that node died) and requeues claimed jobs that
  never started; finished jobs older than ``retention_days`` are deleted with their files.

It stops when the server that started it is gone (``--parent-pid``), when its lock file is
removed or replaced, or on SIGTERM/SIGINT: it then stops its workers, fails their jobs as
interrupted by a restart and puts claimed jobs that had not started back into the queue.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cut_processes.jobs import errors
from cut_processes.jobs.callbacks import send_failed_callback
from cut_processes.jobs.config import EngineSettings
from cut_processes.jobs.node import acquire_lock, pid_alive, process_start_time
from cut_processes.jobs.results import remove_job_files
from cut_processes.jobs.store import ACCEPTED, ACTIVE, DISMISSED, FAILED, RUNNING, open_store
from cut_processes.jobs.store import now as store_now
from cut_processes.jobs.worker import allows_internal_requests, run_job

LOGGER = logging.getLogger("cut_processes.jobs.supervisor")

KILL_GRACE_SECONDS = 2.0


def signal_name(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


@dataclass
class Worker:
    job: dict[str, Any]
    process: Any  # multiprocessing.Process
    started: float  # monotonic
    timeout: float
    stop_reason: str | None = None  # "dismissed", "timeout", "shutdown"
    kill_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.job["job_id"]


class Supervisor:
    def __init__(
        self,
        settings: EngineSettings,
        processes: dict[str, dict[str, Any]],
        lock_fd: int,
        parent_pid: int | None = None,
    ):
        self.settings = settings
        self.processes = processes
        self.lock_fd = lock_fd
        self.parent_pid = parent_pid
        self.parent_start = process_start_time(parent_pid) if parent_pid else None
        self.node = settings.node_id
        self.store = open_store(settings.connection)
        self.ctx = multiprocessing.get_context("fork")
        self.workers: dict[str, Worker] = {}
        self.helpers: list[Any] = []
        self.stopping = False
        self.wake = self._bind_wakeup()

    # -- life cycle -----------------------------------------------------------------------
    def _bind_wakeup(self) -> socket.socket | None:
        if not sys.platform.startswith("linux"):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self.settings.wakeup_address)
        except OSError as err:
            LOGGER.warning("no wake-up socket (%s); polling only", err)
            sock.close()
            return None
        sock.setblocking(False)
        return sock

    def _request_stop(self, signum: int, _frame: Any) -> None:
        LOGGER.info("received %s", signal.Signals(signum).name)
        self.stopping = True

    def _lock_still_mine(self) -> bool:
        try:
            return os.stat(self.settings.lock_path).st_ino == os.fstat(self.lock_fd).st_ino
        except OSError:
            return False

    def _should_stop(self) -> str | None:
        if self.stopping:
            return "signal"
        if self.parent_pid and not pid_alive(self.parent_pid, self.parent_start):
            return f"server process {self.parent_pid} is gone"
        if not self._lock_still_mine():
            return f"lock file {self.settings.lock_path} was removed"
        return None

    def _preload(self) -> None:
        """Import processor modules once, so that forked workers start warm."""
        for process_id, conf in self.processes.items():
            name = (conf.get("processor") or {}).get("name", "")
            if "." in name:
                try:
                    importlib.import_module(name.rsplit(".", 1)[0])
                except Exception as err:  # the job itself will report the problem
                    LOGGER.warning("cannot import processor of %s: %s", process_id, err)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        LOGGER.info(
            "supervisor %d started: node %s, %d workers, store %s",
            os.getpid(), self.node, self.settings.workers, self.store,
        )  # fmt: skip
        self._preload()
        recovered = False
        mono = time.monotonic()
        next_heartbeat = mono + self.settings.heartbeat_interval
        sweep_interval = min(5.0, self.settings.stale_after / 3)
        next_sweep = mono
        next_cleanup = mono
        reason = None
        last_error: str | None = None
        while True:
            reason = self._should_stop()
            if reason:
                break
            try:
                if not recovered:  # retried until the store answers
                    self._recover_own_jobs()
                    recovered = True
                self._reap()
                self._watch()
                mono = time.monotonic()
                if mono >= next_heartbeat:
                    self.store.heartbeat(list(self.workers), store_now())
                    next_heartbeat = mono + self.settings.heartbeat_interval
                if mono >= next_sweep:
                    self._sweep()
                    next_sweep = mono + sweep_interval
                if mono >= next_cleanup:
                    self._cleanup()
                    next_cleanup = mono + self.settings.cleanup_interval
                self._start_jobs()
            except Exception as err:
                # The store may be briefly unreachable (PostgreSQL restart): keep going,
                # logging the stack once per kind of error rather than every second.
                kind = f"{type(err).__name__}: {err}"
                if kind != last_error:
                    LOGGER.exception("supervisor loop error")
                    last_error = kind
                else:
                    LOGGER.warning("supervisor loop error again: %s", type(err).__name__)
                time.sleep(1)
            else:
                last_error = None
            self._wait()
        LOGGER.info("supervisor %d stopping: %s", os.getpid(), reason)
        self._shutdown()

    # -- recovery -------------------------------------------------------------------------
    def _fail_interrupted(self, **scope: Any) -> None:
        problem = errors.interrupted()
        failed = self.store.interrupt(problem.detail, problem.as_dict(), store_now(), **scope)
        for job in failed:
            LOGGER.info("job %s failed: interrupted", job["job_id"])
            remove_job_files(self.settings, job["job_id"])
            self._failed_callback(job, problem)

    def _recover_own_jobs(self) -> None:
        """Jobs of this node's previous supervisor: we hold the lock, so it is gone."""
        self._fail_interrupted(node=self.node)
        released = self.store.release(node=self.node)
        if released:
            LOGGER.info("requeued %d claimed jobs of the previous supervisor", released)

    def _sweep(self) -> None:
        """Jobs of any node whose supervisor stopped sending heartbeats."""
        cutoff = store_now() - self.settings.stale_after
        self._fail_interrupted(heartbeat_before=cutoff)
        released = self.store.release(heartbeat_before=cutoff)
        if released:
            LOGGER.info("requeued %d claimed jobs of a vanished node", released)

    def _cleanup(self) -> None:
        cutoff = store_now() - self.settings.retention_days * 86400
        purged = self.store.purge_expired(cutoff)
        for job in purged:
            remove_job_files(self.settings, job["job_id"], job.get("result_path"))
        if purged:
            LOGGER.info("deleted %d jobs past their retention", len(purged))

    # -- workers --------------------------------------------------------------------------
    def _start_jobs(self) -> None:
        free = self.settings.workers - len(self.workers)
        if free <= 0:
            return
        claimed = self.store.claim_next(self.node, uuid.uuid4().hex, free, store_now())
        for job in claimed:
            conf = self.processes.get(job["process_id"])
            if conf is None:
                self._finish_without_worker(
                    job,
                    errors.no_such_process(job["process_id"]),
                )
                continue
            process = self.ctx.Process(
                target=self._in_child, args=(run_job, self.settings, conf, job),
                name=f"cut-job-{job['job_id']}", daemon=False,
            )  # fmt: skip
            process.start()
            LOGGER.info("job %s (%s) started in worker %s", job["job_id"], job["process_id"],
                        process.pid)  # fmt: skip
            timeout = float(job.get("timeout") or self.settings.timeout)
            self.workers[job["job_id"]] = Worker(job, process, time.monotonic(), timeout)

    def _finish_without_worker(self, job: dict[str, Any], problem: errors.Problem) -> None:
        now = store_now()
        self.store.update(
            job["job_id"],
            {"status": FAILED, "finished": now, "updated": now, "message": problem.detail,
             "error": problem.as_dict(), "request": None},
            status_in=ACTIVE, claim=job["claim"],
        )  # fmt: skip

    def _fail_worker_job(
        self, worker: Worker, problem: errors.Problem, status_in: Any = ACTIVE
    ) -> bool:
        now = store_now()
        failed = self.store.update(
            worker.job_id,
            {"status": FAILED, "finished": now, "updated": now, "message": problem.detail,
             "error": problem.as_dict(), "request": None},
            status_in=status_in, claim=worker.job["claim"],
        )  # fmt: skip
        if failed:
            self._failed_callback(worker.job, problem)
        return failed

    def _stop_worker(self, worker: Worker, reason: str) -> None:
        if worker.stop_reason is None:
            worker.stop_reason = reason
            worker.kill_at = time.monotonic() + KILL_GRACE_SECONDS
            with contextlib.suppress(OSError):
                worker.process.terminate()

    def _watch(self) -> None:
        """Dismissed jobs, time limits, and workers that ignore SIGTERM."""
        if not self.workers:
            return
        statuses = self.store.statuses(list(self.workers))
        mono = time.monotonic()
        for job_id, worker in list(self.workers.items()):
            if worker.stop_reason is None:
                status = statuses.get(job_id)
                if status is None or status == DISMISSED:
                    LOGGER.info("job %s dismissed: stopping its worker", job_id)
                    self._stop_worker(worker, "dismissed")
                elif mono - worker.started > worker.timeout:
                    problem = errors.time_limit(worker.job["process_id"], worker.timeout)
                    LOGGER.info("job %s exceeded %g s", job_id, worker.timeout)
                    self._fail_worker_job(worker, problem)
                    self._stop_worker(worker, "timeout")
            elif worker.kill_at is not None and mono >= worker.kill_at:
                with contextlib.suppress(OSError):
                    worker.process.kill()
                worker.kill_at = None

    def _reap(self) -> None:
        for job_id, worker in list(self.workers.items()):
            exitcode = worker.process.exitcode
            if exitcode is None:
                continue
            worker.process.join()
            worker.process.close()
            del self.workers[job_id]
            if worker.stop_reason in ("dismissed", "timeout"):
                remove_job_files(self.settings, job_id)
                continue
            # A worker always leaves its job final; if not, it died on the way.
            if exitcode == 0 and self.store.statuses([job_id]).get(job_id) not in ACTIVE:
                continue
            how = signal_name(exitcode) if exitcode != 0 else "it ended without a result"
            if self._fail_worker_job(worker, errors.worker_died(worker.job["process_id"], how)):
                LOGGER.warning("job %s failed: worker %s", job_id, how)
                remove_job_files(self.settings, job_id)
        self.helpers = [h for h in self.helpers if h.exitcode is None]

    def _failed_callback(self, job: dict[str, Any], problem: errors.Problem) -> None:
        subscriber = job.get("subscriber") or {}
        if not subscriber.get("failedUri"):
            return
        conf = self.processes.get(job["process_id"], {})
        body = {**problem.body(), "jobID": job["job_id"]}
        helper = self.ctx.Process(
            target=self._in_child,
            args=(send_failed_callback, self.settings.connection, job["job_id"], subscriber,
                  allows_internal_requests(conf), body),
            daemon=False,
        )  # fmt: skip
        helper.start()
        self.helpers.append(helper)

    def _in_child(self, target: Any, *args: Any) -> None:
        """Run ``target`` in a forked child without the supervisor's lock and socket."""
        # The lock stays held by the supervisor; a child keeping a copy would delay the
        # next supervisor if this one died.
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)
        if self.wake is not None:
            with contextlib.suppress(OSError):
                self.wake.close()
        target(*args)

    def _wait(self) -> None:
        waitables: list[Any] = [w.process.sentinel for w in self.workers.values()]
        if self.wake is not None:
            waitables.append(self.wake)
        multiprocessing.connection.wait(waitables, timeout=self.settings.poll_interval)
        if self.wake is not None:
            with contextlib.suppress(OSError):
                while self.wake.recv(64):
                    pass

    def _shutdown(self) -> None:
        for worker in self.workers.values():
            self._stop_worker(worker, "shutdown")
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for worker in self.workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join(2)
        try:
            # Only this supervisor's own jobs: a successor may already run under the same
            # node name (when the lock file was removed rather than the server stopped).
            problem = errors.interrupted()
            for worker in self.workers.values():
                claim = worker.job["claim"]
                if self._fail_worker_job(worker, problem, status_in=[RUNNING]):
                    LOGGER.info("job %s failed: interrupted", worker.job_id)
                    remove_job_files(self.settings, worker.job_id)
                else:  # claimed but not started: back into the queue
                    self.store.update(
                        worker.job_id,
                        {"node": None, "claim": None, "heartbeat": None, "worker_pid": None},
                        status_in=[ACCEPTED], claim=claim,
                    )  # fmt: skip
        except Exception:
            LOGGER.exception("could not record interrupted jobs; the next supervisor will")
        for helper in self.helpers:
            helper.join(12)
        self.store.close()
        if self.wake is not None:
            self.wake.close()
        os.close(self.lock_fd)
        LOGGER.info("supervisor %d stopped", os.getpid())


# -- command line ---------------------------------------------------------------------------
def load_config(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``server.manager`` and the process resources of a pygeoapi configuration."""
    from pygeoapi.util import yaml_load

    with path.open(encoding="utf-8") as fh:
        config = yaml_load(fh)
    manager_def = dict(config.get("server", {}).get("manager") or {})
    processes = {
        key: dict(value)
        for key, value in (config.get("resources") or {}).items()
        if value.get("type") == "process"
    }
    return manager_def, processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cut_processes.jobs.supervisor")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="pygeoapi configuration (server.manager, processes)")
    source.add_argument("--manager-def", help="JSON file written by the manager")
    parser.add_argument("--connection", help="job store (overrides the configuration)")
    parser.add_argument("--output-dir", help="results folder (overrides the configuration)")
    parser.add_argument("--workers", type=int, help="worker processes (0 = CPU count)")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    parser.add_argument("--lock-fd", type=int, help="an already locked lock file descriptor")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("CUT_JOBS_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    if args.config:
        manager_def, processes = load_config(Path(args.config))
    else:
        data = json.loads(Path(args.manager_def).read_text(encoding="utf-8"))
        manager_def, processes = data["manager"], data["processes"]
    for key, value in (
        ("connection", args.connection), ("output_dir", args.output_dir),
        ("workers", args.workers),
    ):  # fmt: skip
        if value is not None:
            manager_def[key] = value
    settings = EngineSettings.from_manager_def(manager_def)

    lock_fd = args.lock_fd
    if lock_fd is None:
        lock_fd = acquire_lock(settings.lock_path)
        if lock_fd is None:
            LOGGER.info("another supervisor holds %s; exiting", settings.lock_path)
            return 0
    else:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    Supervisor(settings, processes, lock_fd, args.parent_pid).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
