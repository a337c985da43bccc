"""What the feature provider needs from the HTTP layer that pygeoapi 0.24 does not do itself.

``server.app`` calls :func:`install` on the Flask app and declares
:func:`conformance_classes`. The hooks only touch the items routes of collections served by
:class:`~cut_processes.providers.FeatureProvider` (and the landing page):

- **CQL2 parsing.** pygeoapi parses ``filter`` with pygeofilter, which gets parts of CQL2 1.0
  wrong (see :mod:`~cut_processes.providers.cql2`). pygeoapi imports its two parse functions
  by name into ``pygeoapi.api.itemtypes``; :func:`install` rebinds those names to ours. This
  is process-wide and idempotent; ours accept a superset of pygeofilter's CQL2 and build the
  same node classes, so pygeoapi's other providers see the ASTs they expect. ``filter`` text
  starting with '{' is read as CQL2-JSON, so ``filter-lang=cql2-json`` works in a GET.
- **Filter errors that name the problem.** pygeoapi answers any unparsable filter with "Bad CQL
  text". A before-request hook parses ``filter`` (and a CQL2-JSON POST body) first and answers
  400 with the parser's message (and for an unknown ``filter-lang`` or ``filter-crs``).
  Errors found while translating (unknown property, wrong type) come from the provider, through
  pygeoapi, with their own message.
- **Transactions.** Writing to a collection that is not ``editable`` answers 405 with
  ``Allow`` (pygeoapi: 400). pygeoapi routes no PATCH: ``PATCH /collections/{id}/items/{item}``
  is added here (JSON merge patch, 204). A POST body of ``application/geo+json`` with
  parameters (``; charset=utf-8``) is routed as a new feature too, not as a filter.
- **Landing page.** It carries ``rel="conformance"`` (pygeoapi) and also the OGC relation type
  ``http://www.opengis.net/def/rel/ogc/1.0/conformance``; QGIS and GDAL look for either.

Error bodies carry pygeoapi's keys (``code``, ``type``, ``description``) and RFC 7807's
(``title``, ``status``, ``detail``).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, request
from pygeoapi.crs import get_crs
from pygeoapi.plugin import load_plugin
from pygeoapi.provider.base import ProviderGenericError
from werkzeug.datastructures import Headers

from cut_processes.providers import cql2
from cut_processes.providers.filters import CONFORMANCE

LOGGER = logging.getLogger(__name__)

OGC_CONFORMANCE_REL = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
FEATURES_4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf"
FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text", "cql-json")
PROVIDER_PREFIX = "cut_processes.providers."
GEOJSON = "application/geo+json"


def _feature_provider_def(resource: dict) -> dict | None:
    """The collection's feature provider definition when it is ours."""
    if resource.get("type") != "collection":
        return None
    for provider in resource.get("providers", []):
        if provider.get("type") == "feature" and str(provider.get("name", "")).startswith(
            PROVIDER_PREFIX
        ):
            return provider
    return None


def conformance_classes(config: dict) -> list[str]:
    """The Features Part 3 / CQL2 (and Part 4 update) classes, if a collection is ours."""
    providers = [_feature_provider_def(r) for r in config.get("resources", {}).values()]
    providers = [p for p in providers if p is not None]
    if not providers:
        return []
    classes = list(CONFORMANCE)
    if any(p.get("editable") for p in providers):
        classes += [f"{FEATURES_4}/create-replace-delete", f"{FEATURES_4}/update"]
    return classes


def use_our_cql2_parsers() -> None:
    """Make pygeoapi parse filters with :mod:`cut_processes.providers.cql2` (idempotent)."""
    import pygeoapi.api.itemtypes as itemtypes

    itemtypes.parse_cql2_text = cql2.parse_text
    itemtypes.parse_cql2_json = cql2.parse_json


def error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    """An exception body readable both as pygeoapi's and as RFC 7807."""
    body = {
        "code": code,
        "type": code,
        "description": message,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
    }
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def install(app: Flask, api: Any) -> None:
    """Add the hooks and the PATCH route described in the module docstring."""
    use_our_cql2_parsers()
    resources = api.config.get("resources", {})

    def provider_def(collection_id: str) -> dict | None:
        resource = resources.get(collection_id)
        return None if resource is None else _feature_provider_def(resource)

    def items_target() -> tuple[str, str | None] | None:
        """(collection, item or None) of an items URL of one of our collections."""
        parts = request.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "collections" or parts[2] != "items":
            return None
        if len(parts) > 4 or provider_def(parts[1]) is None:
            return None
        return parts[1], (parts[3] if len(parts) == 4 else None)

    @app.before_request
    def _check_items_request() -> Response | None:
        target = items_target()
        if target is None:
            return None
        collection_id, item_id = target
        definition = provider_def(collection_id)
        method = request.method
        if item_id is None and method == "POST":
            if request.mimetype == GEOJSON:
                # pygeoapi compares the whole header: make '; charset=utf-8' a feature too.
                request.environ["CONTENT_TYPE"] = GEOJSON
                return _refuse_if_read_only(definition, collection_id, item_id)
            if not request.content_type:
                return error(
                    400,
                    "InvalidParameterValue",
                    "POST to items needs a Content-Type: application/geo+json for a new "
                    "feature, application/json for a CQL2-JSON query",
                )
            return _check_filter(body=request.get_data())
        if method in ("PUT", "DELETE", "PATCH"):
            return _refuse_if_read_only(definition, collection_id, item_id)
        if method == "GET" and item_id is None:
            return _check_filter(body=None)
        return None

    @app.route(
        "/collections/<path:collection_id>/items/<path:item_id>",
        methods=["PATCH"],
        endpoint="cut_patch_collection_item",
    )
    def _patch_item(collection_id: str, item_id: str) -> Response:
        definition = provider_def(collection_id)
        if definition is None:
            return error(404, "NotFound", f"collection {collection_id!r} not found")
        refused = _refuse_if_read_only(definition, collection_id, item_id)
        if refused is not None:
            return refused
        try:
            provider = load_plugin("provider", definition)
            provider.patch(item_id, request.get_data())
        except ProviderGenericError as err:
            return error(err.http_status_code, err.ogc_exception_code, err.message)
        return Response(status=204)

    @app.after_request
    def _landing_page_links(response: Response) -> Response:
        # pygeoapi's views replace response.headers by a plain dict, whose 'Content-Type'
        # Response.mimetype cannot see (None). Restore a Headers object, for this hook and the
        # ones that run after it (the /conformance merge of server/conformance.py).
        if not isinstance(response.headers, Headers):
            response.headers = Headers(response.headers)
        if (
            request.path.rstrip("/") != ""
            or response.status_code != 200
            or response.mimetype != "application/json"
        ):
            return response
        body = json.loads(response.get_data())
        links = body.get("links", [])
        conformance = next((link for link in links if link.get("rel") == "conformance"), None)
        if conformance and not any(link.get("rel") == OGC_CONFORMANCE_REL for link in links):
            links.append({**conformance, "rel": OGC_CONFORMANCE_REL})
            response.set_data(json.dumps(body))
        return response


def _refuse_if_read_only(
    definition: dict, collection_id: str, item_id: str | None
) -> Response | None:
    if definition.get("editable"):
        return None
    allow = "GET, HEAD, OPTIONS"
    return error(
        405,
        "MethodNotAllowed",
        f"collection {collection_id!r} is read-only: {request.method} is not allowed"
        + (f" on item {item_id!r}" if item_id else ""),
        {"Allow": allow},
    )


def _check_filter(body: bytes | None) -> Response | None:
    """400 naming the problem for a filter that cannot be parsed; None when it can."""
    params = request.args
    lang = params.get("filter-lang")
    if lang is not None and lang not in FILTER_LANGS:
        return error(
            400,
            "InvalidParameterValue",
            f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json",
        )
    crs = params.get("filter-crs")
    if crs is not None:
        try:
            get_crs(crs)
        except Exception as err:  # pyproj's CRSError or pygeoapi's own
            return error(400, "InvalidParameterValue", f"filter-crs {crs!r} is not a CRS: {err}")
    text = params.get("filter")
    try:
        if text is not None:
            if lang in ("cql2-json", "cql-json"):
                cql2.parse_json(text)
            else:
                cql2.parse_text(text)
        elif body:
            cql2.parse_json(body)
    except cql2.FilterError as err:
        return error(400, "InvalidParameterValue", str(err))
    return None
