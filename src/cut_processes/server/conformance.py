"""Conformance classes the suite implements beyond what pygeoapi declares.

pygeoapi builds ``/conformance`` from its own API modules; plugins that implement more
(job-list, dismiss, CQL2 filters...) register their classes here and the app merges them
into the JSON response.
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

EXTRA_KEY = "CUT_EXTRA_CONFORMANCE"


def declare_conformance(app: Flask, *uris: str) -> None:
    """Add conformance class URIs to ``/conformance`` of this app."""
    extra: list[str] = app.config.setdefault(EXTRA_KEY, [])
    for uri in uris:
        if uri not in extra:
            extra.append(uri)


def install(app: Flask) -> None:
    """Merge the declared classes into every JSON ``/conformance`` response."""

    @app.after_request
    def _merge_conformance(response: Response) -> Response:
        extra = app.config.get(EXTRA_KEY)
        # pygeoapi assigns a plain dict to ``response.headers``: read the header, not mimetype.
        content_type = str(response.headers.get("Content-Type", ""))
        if (
            not extra
            or request.path.rstrip("/") != "/conformance"
            or response.status_code != 200
            or "json" not in content_type
        ):
            return response
        body = json.loads(response.get_data())
        classes = body.setdefault("conformsTo", [])
        classes.extend(uri for uri in extra if uri not in classes)
        response.set_data(json.dumps(body))
        return response
