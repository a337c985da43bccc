"""Job results: encoded once to bytes, small ones kept in the store, large ones as files."""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
from pathlib import Path
from typing import Any

from pygeoapi.process.base import JobResultNotFoundError

from cut_processes.jobs.config import EngineSettings

JSON = "application/json"


def is_json(mimetype: str | None) -> bool:
    base = (mimetype or "").split(";")[0].strip().lower()
    return base == JSON or base.endswith("+json")


def encode_result(mimetype: str | None, outputs: Any) -> tuple[str, bytes]:
    """A processor's ``(mimetype, outputs)`` as (mimetype, bytes)."""
    if isinstance(outputs, bytes | bytearray | memoryview):
        return mimetype or "application/octet-stream", bytes(outputs)
    if isinstance(outputs, str) and not is_json(mimetype):
        return mimetype or "text/plain; charset=utf-8", outputs.encode("utf-8")
    payload = json.dumps(outputs, ensure_ascii=False, separators=(",", ":"), default=str)
    return mimetype or JSON, payload.encode("utf-8")


def result_fields(
    settings: EngineSettings, job_id: str, mimetype: str, payload: bytes
) -> dict[str, Any]:
    """Store columns of a result; writes large results to ``<output_dir>/<job_id>/``."""
    fields: dict[str, Any] = {"mimetype": mimetype, "result_size": len(payload)}
    if len(payload) <= settings.small_result_bytes:
        fields.update(result=payload, result_path=None)
        return fields
    folder = settings.job_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    extension = mimetypes.guess_extension(mimetype.split(";")[0].strip()) or ".bin"
    target = folder / f"result{extension}"
    partial = folder / f".result{extension}.partial"
    with partial.open("wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    partial.replace(target)
    fields.update(result=None, result_path=str(target))
    return fields


def read_result(job: dict[str, Any]) -> tuple[str, bytes]:
    """(mimetype, bytes) of a successful job fetched ``with_result``."""
    mimetype = job.get("mimetype") or JSON
    if job.get("result") is not None:
        return mimetype, bytes(job["result"])
    path = job.get("result_path")
    if not path:
        raise JobResultNotFoundError(f"job {job['job_id']} has no stored result")
    try:
        return mimetype, Path(path).read_bytes()
    except OSError as err:
        raise JobResultNotFoundError(f"result file of job {job['job_id']} is missing") from err


def remove_job_files(settings: EngineSettings, job_id: str, result_path: str | None = None) -> None:
    """Delete a job's folder (results, partial outputs) and a result file elsewhere."""
    shutil.rmtree(settings.job_dir(job_id), ignore_errors=True)
    if result_path:
        path = Path(result_path)
        if path.parent.name == job_id:
            shutil.rmtree(path.parent, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
