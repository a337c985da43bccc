"""The job engine's settings, read from pygeoapi's ``server.manager`` block.

Every key has a default, so ``server.manager: {name: cut_processes.jobs.CutManager}`` alone
gives a working engine. Values may arrive as strings (``${VAR:-default}`` interpolation), so
each one is converted and checked here, with a message naming the key.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _number(manager_def: dict[str, Any], key: str, default: float, *, minimum: float) -> float:
    raw = manager_def.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"server.manager.{key}: {raw!r} is not a number") from err
    if value < minimum:
        raise ValueError(f"server.manager.{key}: {raw!r} must be at least {minimum:g}")
    return value


def usable_cpus() -> int:
    """CPUs this process may run on (respects affinity and container CPU sets)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def is_postgres_url(connection: str) -> bool:
    return connection.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class EngineSettings:
    """What the manager, the supervisor and the workers need to agree on.

    Times are seconds, sizes bytes. ``connection`` is a ``postgresql://`` URL or an
    absolute SQLite file path; ``output_dir`` and ``var_dir`` are absolute.
    """

    connection: str
    output_dir: Path
    var_dir: Path
    workers: int
    sync_timeout: float
    max_queued: int
    retention_days: float
    timeout: float
    small_result_bytes: int
    heartbeat_interval: float
    stale_after: float
    cleanup_interval: float
    poll_interval: float
    retry_after: int
    supervisor: str

    @classmethod
    def from_manager_def(cls, manager_def: dict[str, Any]) -> EngineSettings:
        var_dir = Path(str(manager_def.get("var_dir") or "var")).resolve()
        output_dir_raw = manager_def.get("output_dir")
        output_dir = Path(str(output_dir_raw)).resolve() if output_dir_raw else var_dir / "results"
        connection = str(manager_def.get("connection") or "").strip()
        if not connection:
            connection = str(var_dir / "jobs.db")
        elif not is_postgres_url(connection):
            connection = str(Path(connection.removeprefix("sqlite:///")).resolve())
        workers = int(_number(manager_def, "workers", 0, minimum=0))
        supervisor = str(manager_def.get("supervisor") or "auto").strip().lower()
        if supervisor not in ("auto", "external"):
            raise ValueError(
                f"server.manager.supervisor: {supervisor!r} is not 'auto' or 'external'"
            )
        return cls(
            connection=connection,
            output_dir=output_dir,
            var_dir=var_dir,
            workers=workers or usable_cpus(),
            sync_timeout=_number(manager_def, "sync_timeout", 60, minimum=0),
            max_queued=int(_number(manager_def, "max_queued", 1000, minimum=1)),
            retention_days=_number(manager_def, "retention_days", 7, minimum=0),
            timeout=_number(manager_def, "timeout", 3600, minimum=0.1),
            small_result_bytes=int(_number(manager_def, "small_result_bytes", MIB, minimum=0)),
            heartbeat_interval=_number(manager_def, "heartbeat_interval", 2, minimum=0.1),
            stale_after=_number(manager_def, "stale_after", 15, minimum=0.5),
            cleanup_interval=_number(manager_def, "cleanup_interval", 300, minimum=0.1),
            poll_interval=_number(manager_def, "poll_interval", 0.25, minimum=0.01),
            retry_after=int(_number(manager_def, "retry_after", 5, minimum=1)),
            supervisor=supervisor,
        )

    @property
    def node_key(self) -> str:
        """Identifies one (store, results folder) pair; one supervisor runs per key and host."""
        digest = hashlib.sha256(f"{self.connection}\n{self.output_dir}".encode()).hexdigest()
        return digest[:12]

    @property
    def lock_path(self) -> Path:
        return self.var_dir / f"jobs-supervisor-{self.node_key}.lock"

    @property
    def log_path(self) -> Path:
        return self.var_dir / f"jobs-supervisor-{self.node_key}.log"

    @property
    def node_id(self) -> str:
        """The name a supervisor claims jobs under: host and lock file."""
        return f"{socket.gethostname()}:{self.lock_path}"

    @property
    def wakeup_address(self) -> str:
        """Abstract Unix socket (Linux) the supervisor listens on for 'new work' nudges."""
        digest = hashlib.sha256(self.node_id.encode()).hexdigest()[:16]
        return f"\0cut-jobs-{digest}"

    def job_dir(self, job_id: str) -> Path:
        """Folder of one job's files (large results, partial outputs)."""
        return self.output_dir / job_id

    def as_manager_def(self) -> dict[str, Any]:
        """The settings as a ``server.manager`` block (for the supervisor's command line)."""
        return {
            "connection": self.connection,
            "output_dir": str(self.output_dir),
            "var_dir": str(self.var_dir),
            "workers": self.workers,
            "sync_timeout": self.sync_timeout,
            "max_queued": self.max_queued,
            "retention_days": self.retention_days,
            "timeout": self.timeout,
            "small_result_bytes": self.small_result_bytes,
            "heartbeat_interval": self.heartbeat_interval,
            "stale_after": self.stale_after,
            "cleanup_interval": self.cleanup_interval,
            "poll_interval": self.poll_interval,
            "retry_after": self.retry_after,
            "supervisor": self.supervisor,
        }


def process_timeout(settings: EngineSettings, process_conf: dict[str, Any]) -> float:
    """A process's execution limit in seconds: its ``processor.timeout`` or the default."""
    raw = (process_conf.get("processor") or {}).get("timeout", process_conf.get("timeout"))
    if raw is None or raw == "":
        return settings.timeout
    try:
        value = float(raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"processor timeout {raw!r} is not a number of seconds") from err
    if value <= 0:
        raise ValueError(f"processor timeout {raw!r} must be positive")
    return value
