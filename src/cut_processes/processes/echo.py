"""Process ``echo``: returns its input, optionally after a pause with progress reports.

OGC API - Processes conformance test suites expect such a process; it also serves as the
smallest end-to-end check of the job engine (sync, async, progress, cancellation).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from cut_processes.processes.base import CutProcessor

MAX_PAUSE_SECONDS = 600

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "echo",
    "title": {"en": "Echo", "de": "Echo"},
    "description": {
        "en": "Returns the message it is given, optionally after waiting `pause` seconds while "
        "reporting progress. For checking clients and the job engine.",
        "de": "Gibt die übergebene Nachricht zurück, auf Wunsch nach `pause` Sekunden Wartezeit "
        "mit Fortschrittsmeldungen. Zum Prüfen von Clients und der Job-Verwaltung.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["echo", "test"],
    "links": [
        {
            "type": "text/html",
            "rel": "about",
            "title": "Documentation of the echo process",
            "href": "https://github.com/connected-urban-twins/cut-processes/blob/main/docs/processes/echo.md",
            "hreflang": "en-US",
        }
    ],
    "inputs": {
        "message": {
            "title": "Message",
            "description": "The text to send back.",
            "schema": {"type": "string", "maxLength": 100000},
            "minOccurs": 1,
            "maxOccurs": 1,
            "keywords": ["text"],
        },
        "pause": {
            "title": "Pause (seconds)",
            "description": "Seconds to wait before answering, reporting progress while waiting.",
            "schema": {
                "type": "number",
                "minimum": 0,
                "maximum": MAX_PAUSE_SECONDS,
                "default": 0,
            },
            "minOccurs": 0,
            "maxOccurs": 1,
            "keywords": ["seconds"],
        },
    },
    "outputs": {
        "message": {
            "title": "Message",
            "description": "The message, unchanged.",
            "schema": {"type": "string", "contentMediaType": "text/plain"},
        },
        "provenance": {
            "title": "Provenance",
            "description": "Process version, parameters, input digest, start and end time.",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
    },
    "example": {"inputs": {"message": "Moin Hamburg!", "pause": 0}},
}


class EchoProcessor(CutProcessor):
    """Echo the ``message`` input back."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = PROCESS_METADATA

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        pause = float(inputs["pause"])
        if pause > 0:
            deadline = time.monotonic() + pause
            while (left := deadline - time.monotonic()) > 0:
                done = 100.0 * (1 - left / pause)
                self.progress(done, f"waiting: {left:.1f} s of {pause:g} s left")
                time.sleep(min(0.1, left))
        self.progress(100, "done")
        return {"message": inputs["message"]}

    def __repr__(self) -> str:
        return "<EchoProcessor>"
