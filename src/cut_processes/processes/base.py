"""What every process of the suite shares: input checking, progress, provenance.

A process module reads like a form: ``PROCESS_METADATA``, then a :class:`CutProcessor`
subclass whose :meth:`CutProcessor.run` receives checked inputs (defaults applied),
calls into ``analysis/`` and shapes the output.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from cut_processes import __version__
from cut_processes.io.inputs import InputProblem

LOGGER = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]


class InputError(ProcessorExecuteError):
    """Bad input from the client: maps to HTTP 400 and names the input."""

    def __init__(self, input_name: str, problem: str):
        self.input_name = input_name
        self.problem = problem
        super().__init__(f"input '{input_name}': {problem}")


class InputTooLargeError(InputError):
    """Input beyond what the process accepts: maps to HTTP 413."""


def utc_now() -> str:
    """The current time as an RFC 3339 UTC timestamp."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def input_digest(inputs: dict[str, Any]) -> str:
    """sha256 of the inputs in canonical JSON: identifies what a result was computed from."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _unwrap_qualified(value: Any, schema: dict[str, Any]) -> Any:
    """OGC qualified input values ``{"value": ..., "mediaType": ...}`` become the bare value."""
    if (
        isinstance(value, dict)
        and "value" in value
        and set(value) <= {"value", "mediaType", "encoding", "schema"}
        and schema.get("type") != "object"
    ):
        return value["value"]
    return value


class CutProcessor(BaseProcessor):
    """Base of all processes: validates inputs against the metadata's JSON Schemas."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = {}

    def __init__(self, processor_def: dict[str, Any]):
        # pygeoapi mutates the metadata it is given: every instance gets its own copy.
        super().__init__(processor_def, copy.deepcopy(self.PROCESS_METADATA))
        # The process's block of the configuration (rasters, allowed hrefs, ...).
        self.processor_def = processor_def
        self._progress_callback: ProgressCallback | None = None
        # Under `cut-twin run`, href inputs may also name local files.
        self.allow_local_paths = bool(processor_def.get("allow_local_paths", False))

    # -- progress -------------------------------------------------------------------------
    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """The job engine (or the CLI) receives ``progress(percent, message)`` calls."""
        self._progress_callback = callback

    def progress(self, percent: float, message: str) -> None:
        """Report progress (0-100) of the running analysis; cheap when nobody listens."""
        if self._progress_callback is not None:
            self._progress_callback(max(0.0, min(100.0, float(percent))), message)

    # -- inputs ---------------------------------------------------------------------------
    def check_inputs(self, data: Any) -> dict[str, Any]:
        """Validate the raw ``inputs`` object; return it with defaults applied.

        :raises InputError: naming the first input that is missing, unknown or invalid.
        """
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError("inputs", f"must be a JSON object, got {type(data).__name__}")
        declared: dict[str, Any] = self.metadata.get("inputs", {})
        unknown = sorted(set(data) - set(declared))
        if unknown:
            raise InputError(
                unknown[0], f"unknown input; this process accepts: {', '.join(sorted(declared))}"
            )
        checked: dict[str, Any] = {}
        for name, spec in declared.items():
            schema = spec.get("schema", {})
            if name not in data or data[name] is None:
                if spec.get("minOccurs", 1) >= 1 and "default" not in schema:
                    raise InputError(name, "is required")
                if "default" in schema:
                    checked[name] = copy.deepcopy(schema["default"])
                continue
            value = _unwrap_qualified(data[name], schema)
            errors = sorted(
                Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path)
            )
            if errors:
                err = errors[0]
                where = "/".join(str(p) for p in err.path)
                raise InputError(name + (f"/{where}" if where else ""), err.message)
            checked[name] = value
        return checked

    # -- execution ------------------------------------------------------------------------
    def execute(self, data: dict[str, Any], outputs: dict | None = None) -> tuple[str, Any]:
        started = utc_now()
        inputs = self.check_inputs(data)
        try:
            result = self.run(inputs)
        except InputProblem as problem:  # raised in io/ and analysis/, named for the user
            raise InputError(problem.input_name, problem.problem) from problem
        if isinstance(result, dict):
            result.setdefault("provenance", self.provenance(inputs, started))
        return "application/json", result

    def run(self, inputs: dict[str, Any]) -> Any:
        """The analysis: checked inputs in, a JSON-serialisable result out."""
        raise NotImplementedError

    def provenance(
        self, inputs: dict[str, Any], started: str, models: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        """Who computed this result, from what and when."""
        return {
            "process": self.metadata["id"],
            "process_version": self.metadata.get("version"),
            "software": f"cut-processes {__version__}",
            "parameters": {k: v for k, v in inputs.items() if _is_small(v)},
            "input_digest": input_digest(inputs),
            "models": models or [],
            "started": started,
            "finished": utc_now(),
        }


def _is_small(value: Any) -> bool:
    """Scalars and short lists go into provenance verbatim; data inputs only by digest."""
    if isinstance(value, str | int | float | bool) or value is None:
        return not isinstance(value, str) or len(value) <= 200
    if isinstance(value, list):
        return len(value) <= 16 and all(isinstance(v, int | float | str) for v in value)
    return False
