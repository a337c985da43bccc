"""The job engine: a pygeoapi process manager with worker processes, progress,
cancellation, durable results and OGC API - Processes job conformance.

Configure it as ``server.manager.name: cut_processes.jobs.CutManager`` (see docs/jobs.md).
"""

from cut_processes.jobs.manager import CutManager

__all__ = ["CutManager"]
