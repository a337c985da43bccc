"""Errors of the job engine and their one translation into HTTP problems.

Everything that goes wrong while submitting, running or querying a job ends here as a
:class:`Problem` (status, type URI, title, detail). The same problem is the HTTP answer of a
sync execution, the body of ``/jobs/{id}/results`` of a failed job and, by its ``detail``,
the job's ``message``. Unknown exceptions become a generic ``500`` whose detail names the
job, never the exception text or a stack trace (those may contain input data).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any

from pygeoapi.process.base import (
    JobNotFoundError,
    ProcessorExecuteError,
    UnknownProcessError,
)

from cut_processes.processes.base import InputError, InputTooLargeError

LOGGER = logging.getLogger(__name__)

OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
NO_SUCH_PROCESS = OGC + "no-such-process"
NO_SUCH_JOB = OGC + "no-such-job"
RESULT_NOT_READY = OGC + "result-not-ready"
INVALID_PARAMETER = OGC + "invalid-parameter-value"
PAYLOAD_TOO_LARGE = OGC + "payload-too-large"
# No OGC type fits these: RFC 9457's "about:blank" means "see the HTTP status".
BLANK = "about:blank"


@dataclass(frozen=True)
class Problem:
    """An HTTP problem (RFC 9457 fields, as OGC API exceptions use them)."""

    status: int
    type: str
    title: str
    detail: str

    def body(self) -> dict[str, Any]:
        """The JSON body; ``description`` repeats ``detail`` for pygeoapi-style clients."""
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "description": self.detail,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(int(data["status"]), data["type"], data["title"], data["detail"])


class JobEngineError(Exception):
    """An error the engine raises on purpose; carries its problem."""

    def __init__(self, problem: Problem, headers: dict[str, str] | None = None):
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = headers or {}


def _title(status: int) -> str:
    return HTTPStatus(status).phrase


def bad_request(detail: str) -> Problem:
    return Problem(400, INVALID_PARAMETER, "Bad Request", detail)


def no_such_process(process_id: str) -> Problem:
    return Problem(404, NO_SUCH_PROCESS, "Not Found", f"there is no process '{process_id}'")


def no_such_job(job_id: str) -> Problem:
    return Problem(404, NO_SUCH_JOB, "Not Found", f"there is no job '{job_id}'")


def result_not_ready(job_id: str, status: str) -> Problem:
    return Problem(
        404, RESULT_NOT_READY, "Not Found",
        f"job '{job_id}' is {status}; its results are available once it is successful",
    )  # fmt: skip


def job_dismissed(job_id: str) -> Problem:
    return Problem(
        410, BLANK, _title(410),
        f"job '{job_id}' was dismissed and has no results; submit it again to compute them",
    )  # fmt: skip


def queue_full(max_queued: int) -> Problem:
    return Problem(
        429, BLANK, _title(429),
        f"{max_queued} jobs are already waiting to run; try again later",
    )  # fmt: skip


def sync_timeout(job_id: str, seconds: float, job_url: str) -> Problem:
    return Problem(
        504, BLANK, _title(504),
        f"job '{job_id}' is still running after {seconds:g} s; it continues as job {job_url}. "
        "Poll that URL for its status and results, or send `Prefer: respond-async` to get "
        "the job at once next time.",
    )  # fmt: skip


def internal_error(job_id: str | None = None) -> Problem:
    where = f" (job '{job_id}')" if job_id else ""
    return Problem(
        500, BLANK, _title(500),
        f"internal error{where}; it has been logged. Try again later and contact the "
        "operators of this service if it persists.",
    )  # fmt: skip


def worker_died(process_id: str, how: str) -> Problem:
    return Problem(
        500, BLANK, _title(500),
        f"the worker process running '{process_id}' died ({how}), for example because it "
        "ran out of memory. Submit the job again, with smaller inputs if it happens again.",
    )  # fmt: skip


def time_limit(process_id: str, seconds: float) -> Problem:
    return Problem(
        500, BLANK, _title(500),
        f"the job exceeded the time limit of {seconds:g} s for process '{process_id}' "
        "and was stopped; submit smaller inputs or ask the operators for a longer limit.",
    )  # fmt: skip


def interrupted() -> Problem:
    return Problem(
        500,
        BLANK,
        _title(500),
        "interrupted: the server stopped or restarted while the job ran; submit it again.",
    )


def problem_from_exception(err: BaseException, job_id: str | None = None) -> Problem:
    """Map any exception to its problem; unknown ones are logged (without their text)."""
    if isinstance(err, JobEngineError):
        return err.problem
    if isinstance(err, InputTooLargeError):
        return Problem(413, PAYLOAD_TOO_LARGE, _title(413), str(err))
    if isinstance(err, InputError):
        return bad_request(str(err))
    if isinstance(err, UnknownProcessError):
        return Problem(404, NO_SUCH_PROCESS, "Not Found", str(err) or "unknown process")
    if isinstance(err, JobNotFoundError):
        return no_such_job(job_id or "?")
    if isinstance(err, ProcessorExecuteError):
        # pygeoapi processors raise this with a message meant for the client.
        return bad_request(err.user_msg or str(err) or err.message)
    if isinstance(err, MemoryError):
        return Problem(
            500, BLANK, _title(500),
            "the job needed more memory than the server has; submit smaller inputs.",
        )  # fmt: skip
    log_internal_error(err, job_id)
    return internal_error(job_id)


def log_internal_error(err: BaseException, job_id: str | None) -> None:
    """Log where an unexpected error happened: its class and stack, not its message.

    Exception messages may quote input values (personal data in contribution texts), so
    only the frames and the exception class are written.
    """
    frames = "".join(traceback.format_tb(err.__traceback__))
    where = f" in job {job_id}" if job_id else ""
    LOGGER.error("internal error%s: %s\n%s", where, type(err).__qualname__, frames)
