"""``GET /health``: is every configured store and the job engine reachable?"""

from __future__ import annotations

import logging
import time
from typing import Any

from pygeoapi.plugin import load_plugin
from pygeoapi.provider import get_provider_by_type

LOGGER = logging.getLogger(__name__)


def _check(name: str, probe) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        probe()
    except Exception as err:  # a health check reports every failure, whatever its kind
        LOGGER.warning("health check %s failed: %s", name, err)
        return {"name": name, "status": "unavailable", "detail": str(err) or type(err).__name__}
    millis = round((time.perf_counter() - started) * 1000, 1)
    return {"name": name, "status": "ok", "ms": millis}


def health_report(api: Any) -> dict[str, Any]:
    """Probe the feature stores of all collections and the process manager's job store."""
    checks = []
    for name, resource in api.config.get("resources", {}).items():
        if resource.get("type") != "collection":
            continue
        try:
            provider_def = get_provider_by_type(resource["providers"], "feature")
        except Exception:  # not a feature collection (coverage, tiles...)
            continue

        def probe(provider_def=provider_def) -> None:
            load_plugin("provider", provider_def).query(resulttype="hits", limit=1)

        checks.append(_check(f"collection:{name}", probe))

    manager = api.manager

    def probe_jobs() -> None:
        ping = getattr(manager, "ping", None)
        if ping is not None:
            ping()
        else:
            manager.get_jobs(limit=1, offset=0)

    checks.append(_check("jobs", probe_jobs))
    status = "ok" if all(c["status"] == "ok" for c in checks) else "unavailable"
    return {"status": status, "checks": checks}
