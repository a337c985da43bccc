"""TEST HELPERS ONLY: processes that sleep, fail, crash or return large results.

They exist so the job engine's tests (and bench) can configure them in a temporary copy of
the pygeoapi configuration; the server imports processors by dotted path, and the tests
folder is not a package it could import from. Never list them in the shipped
``pygeoapi-config.yml``.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, ClassVar

from pygeoapi.process.base import BaseProcessor

from cut_processes.processes.base import CutProcessor, InputError, InputTooLargeError


def _metadata(process_id: str, description: str, inputs: dict[str, Any],
              controls: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "version": "0.0.1",
        "id": process_id,
        "title": {"en": f"Test helper: {process_id}"},
        "description": {"en": f"Test helper of the job engine's tests. {description}"},
        "jobControlOptions": controls or ["sync-execute", "async-execute"],
        "outputTransmission": ["value"],
        "keywords": ["test"],
        "links": [],
        "inputs": inputs,
        "outputs": {
            "result": {
                "title": "Result",
                "description": "Whatever the helper returns.",
                "schema": {"type": "object", "contentMediaType": "application/json"},
            }
        },
        "example": {"inputs": {}},
    }


def _number(title: str, default: float, maximum: float = 3600) -> dict[str, Any]:
    return {
        "title": title, "description": title, "minOccurs": 0, "maxOccurs": 1,
        "schema": {"type": "number", "minimum": 0, "maximum": maximum, "default": default},
    }  # fmt: skip


class SleepProcessor(CutProcessor):
    """Sleeps ``seconds`` while reporting progress; may write a partial output first and
    return ``result_bytes`` bytes of binary result."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = _metadata(
        "sleep",
        "Sleeps, reporting progress every 0.1 s.",
        {
            "seconds": _number("Seconds to sleep", 1),
            "result_bytes": _number("Size of a binary result instead of JSON", 0, 10**8),
            "partial": {
                "title": "Write a partial output",
                "description": "into the job folder",
                "minOccurs": 0,
                "maxOccurs": 1,
                "schema": {"type": "boolean", "default": False},
            },
            "label": {
                "title": "Label",
                "description": "returned as is",
                "minOccurs": 0,
                "maxOccurs": 1,
                "schema": {"type": "string", "default": ""},
            },
        },
    )

    def run(self, inputs: dict[str, Any]) -> Any:
        job_dir = getattr(self, "job_dir", None)
        if inputs["partial"] and job_dir is not None:
            job_dir.mkdir(parents=True, exist_ok=True)
            (job_dir / "partial.txt").write_text("partial output")
        seconds = float(inputs["seconds"])
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.progress(100 * (1 - left / seconds), f"sleeping, {left:.1f} s left")
            time.sleep(min(0.1, left))
        size = int(inputs["result_bytes"])
        if size:
            return bytes(size)
        return {"slept": seconds, "label": inputs["label"], "pid": os.getpid()}

    def execute(self, data: dict[str, Any], outputs: dict | None = None) -> tuple[str, Any]:
        mimetype, result = super().execute(data, outputs)
        if isinstance(result, bytes):
            return "application/octet-stream", result
        return mimetype, result


class CrashProcessor(CutProcessor):
    """Fails on purpose after ``after`` seconds, the way ``mode`` says."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = _metadata(
        "crash",
        "Fails on purpose.",
        {
            "mode": {
                "title": "How to fail",
                "description": "input, too-large, error, exit, kill",
                "minOccurs": 1,
                "maxOccurs": 1,
                "schema": {
                    "type": "string",
                    "enum": ["input", "too-large", "error", "exit", "kill"],
                },
            },
            "after": _number("Seconds before failing", 0),
            "secret": {
                "title": "Data that must not leak",
                "description": "quoted by the error",
                "minOccurs": 0,
                "maxOccurs": 1,
                "schema": {"type": "string", "default": ""},
            },
        },
    )

    def run(self, inputs: dict[str, Any]) -> Any:
        deadline = time.monotonic() + float(inputs["after"])
        while time.monotonic() < deadline:
            self.progress(10, "about to fail")
            time.sleep(0.05)
        mode = inputs["mode"]
        if mode == "input":
            raise InputError("mode", "rejected by the analysis after validation")
        if mode == "too-large":
            raise InputTooLargeError("mode", "the area is larger than 10 km²")
        if mode == "error":
            raise RuntimeError(f"unexpected state with {inputs['secret']}")
        if mode == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)
        return None


class PlainProcessor(BaseProcessor):
    """A plain pygeoapi processor (no input checking, no progress), async only."""

    def __init__(self, processor_def: dict[str, Any]):
        super().__init__(
            processor_def,
            _metadata("plain", "Returns its inputs.", {}, controls=["async-execute"]),
        )

    def execute(self, data: dict[str, Any], outputs: dict | None = None) -> tuple[str, Any]:
        return "application/json", {"inputs": data}
