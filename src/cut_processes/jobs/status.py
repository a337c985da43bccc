"""How a stored job looks to clients: RFC 3339 times, OGC statusInfo, pygeoapi's job dicts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from cut_processes.jobs.errors import Problem
from cut_processes.jobs.store import FAILED, SUCCESSFUL

RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"
JOB_LIST_REL = "http://www.opengis.net/def/rel/ogc/1.0/job-list"


def rfc3339(epoch: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC timestamp with microseconds, or None.

    Stored times are whole microseconds, so a ``datetime`` filter with the rendered value
    as an instant matches the job it was copied from.
    """
    if epoch is None:
        return None
    micros = round(epoch * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=fraction)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_FRACTION = re.compile(r"T\d{2}:\d{2}:\d{2}\.(\d+)")


def parse_instant(text: str) -> tuple[float, float]:
    """An RFC 3339 date-time (or date) as (epoch seconds, resolution in seconds).

    The resolution is what the text can distinguish: a day for a date, a second without
    fraction, 10^-n s with n fraction digits. A time without offset is taken as UTC.

    :raises ValueError: if the text is not a date or date-time.
    """
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return moment.timestamp(), 86400.0
    if "T" not in text.upper():
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    fraction = _FRACTION.search(text.upper())
    resolution = 10.0 ** -min(len(fraction.group(1)), 6) if fraction else 1.0
    return moment.timestamp(), resolution


def job_links(job: dict[str, Any], base_url: str) -> list[dict[str, str]]:
    job_url = f"{base_url}/jobs/{job['job_id']}"
    links = [
        {"href": f"{job_url}?f=json", "rel": "self", "type": "application/json",
         "title": "This job's status as JSON"},
        {"href": f"{job_url}?f=json", "rel": "status", "type": "application/json",
         "title": "Status of this job"},
        {"href": f"{job_url}?f=html", "rel": "alternate", "type": "text/html",
         "title": "This job's status as HTML"},
        {"href": f"{base_url}/jobs?f=json", "rel": "up", "type": "application/json",
         "title": "The job list"},
    ]  # fmt: skip
    if job["status"] in (SUCCESSFUL, FAILED):
        links.append(
            {
                "href": f"{job_url}/results?f=json",
                "rel": RESULTS_REL,
                "type": job.get("mimetype") or "application/json",
                "title": "Results of this job"
                if job["status"] == SUCCESSFUL
                else "Why this job failed",
            }
        )
    return links


def status_info(job: dict[str, Any], base_url: str) -> dict[str, Any]:
    """OGC API - Processes 1.0 statusInfo of a stored job."""
    info: dict[str, Any] = {
        "jobID": job["job_id"],
        "processID": job["process_id"],
        "type": job.get("type") or "process",
        "status": job["status"],
        "message": job.get("message") or "",
        "created": rfc3339(job.get("created")),
        "started": rfc3339(job.get("started")),
        "finished": rfc3339(job.get("finished")),
        "updated": rfc3339(job.get("updated")),
        "progress": int(job.get("progress") or 0),
        "links": job_links(job, base_url),
    }
    if job["status"] == FAILED and job.get("error"):
        # OGC API - Processes 1.1 adds the exception of a failed job to its statusInfo.
        problem = Problem.from_dict(job["error"])
        info["exception"] = {
            "type": problem.type, "title": problem.title,
            "status": problem.status, "detail": problem.detail,
        }  # fmt: skip
    if job.get("callback_error"):
        info["callbackError"] = job["callback_error"]
    return info


def pygeoapi_job(job: dict[str, Any]) -> dict[str, Any]:
    """The job as pygeoapi's own managers return it (for pygeoapi's code paths)."""
    return {
        "type": job.get("type") or "process",
        "identifier": job["job_id"],
        "process_id": job["process_id"],
        "status": job["status"],
        "message": job.get("message") or "",
        "progress": int(job.get("progress") or 0),
        "created": rfc3339(job.get("created")),
        "started": rfc3339(job.get("started")) or "",
        "finished": rfc3339(job.get("finished")) or "",
        "updated": rfc3339(job.get("updated")),
        "mimetype": job.get("mimetype") or "application/json",
        "location": job.get("result_path"),
    }
