"""OGC SensorThings API (FROST, as on Hamburg's urban data platform) -> observations.

Reads, from a service root such as ``https://iot.hamburg.de/v1.1``:

1. ``Things?$expand=Locations,Datastreams`` (paged): the stations with their location and
   datastreams; only datastreams whose ``properties.layerName`` is one of ``layer_names``
   are kept (all when none are given), e.g. Hamburg's bicycle counters publish
   ``Anzahl_Fahrraeder_Zaehlfeld_15-Min``, ``..._1-Stunde``, ``..._1-Tag``, ``..._1-Woche``;
2. ``Datastreams(<id>)/Observations?$select=phenomenonTime,result&$orderby=phenomenonTime``
   (paged, optionally ``$filter`` on a time period): the observations.

Paging follows ``@iot.nextLink``; a server that pages without next links but reports
``@iot.count`` is paged with ``$skip``. A next link seen before (a loop) or more than
``max_pages`` pages end the read with an error. Every request has a timeout.

The HTTP client is injectable (``http_get(url, timeout) -> dict``), so tests replay recorded
responses. Each observation becomes one record with the Thing's location (a Point in
``target_srid``, none when the Thing has no location): ``thing_id``, ``thing_name``,
``datastream_id``, ``layer_name``, ``unit``, ``phenomenon_start``, ``phenomenon_end`` (an
instant gives start = end), ``result``. Observations without a readable time or a numeric
result are rejected with the reason.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from cut_processes.io.records import (
    DEFAULT_SRID,
    ImportResult,
    clean_text,
    dedupe_ids,
    feature,
    parse_datetime,
    parse_number,
    read_geometry,
    transformer,
)

HttpGet = Callable[[str, float], dict[str, Any]]

FIELDS = {
    "id": "string",
    "thing_id": "string",
    "thing_name": "string",
    "datastream_id": "string",
    "layer_name": "string",
    "unit": "string",
    "phenomenon_start": "datetime",
    "phenomenon_end": "datetime",
    "result": "number",
    "source": "string",
}
GEOMETRY_TYPE = "Point"
DEFAULT_TIMEOUT = 30.0
DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_PAGES = 10000


class SensorThingsError(RuntimeError):
    """The service cannot be read: HTTP error, timeout, not JSON, paging loop."""


def urllib_get(url: str, timeout: float) -> dict[str, Any]:
    """GET ``url`` and decode its JSON body (the default client)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        raise SensorThingsError(f"GET {url}: HTTP {err.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise SensorThingsError(f"GET {url}: {getattr(err, 'reason', err)}") from None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SensorThingsError(f"GET {url}: not JSON ({err})") from None


def build_url(root: str, path: str, params: dict[str, Any]) -> str:
    """``root/path?params`` with SensorThings' ``$`` options percent-encoded."""
    query = urllib.parse.urlencode(
        {k: v for k, v in params.items() if v is not None},
        safe="$(),/'",
        quote_via=urllib.parse.quote,
    )
    return f"{root.rstrip('/')}/{path}" + (f"?{query}" if query else "")


def _with_skip(url: str, skip: int) -> str:
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    params["$skip"] = str(skip)
    query = urllib.parse.urlencode(params, safe="$(),/'", quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def paged(
    url: str,
    http_get: HttpGet = urllib_get,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[dict[str, Any]]:
    """Every entity of a collection URL, following ``@iot.nextLink`` (or ``$skip``).

    :raises SensorThingsError: on a paging loop, too many pages, or a page without ``value``.
    """
    seen: set[str] = set()
    fetched = 0
    pages = 0
    next_url: str | None = url
    while next_url:
        if next_url in seen:
            raise SensorThingsError(f"paging loop: {next_url} was already read")
        if pages >= max_pages:
            raise SensorThingsError(f"more than {max_pages} pages from {url}")
        seen.add(next_url)
        page = http_get(next_url, timeout)
        pages += 1
        values = page.get("value") if isinstance(page, dict) else None
        if not isinstance(values, list):
            raise SensorThingsError(f"GET {next_url}: no 'value' list in the response")
        yield from values
        fetched += len(values)
        link = page.get("@iot.nextLink")
        if link:
            next_url = urllib.parse.urljoin(next_url, link)
        elif isinstance(page.get("@iot.count"), int) and fetched < page["@iot.count"] and values:
            next_url = _with_skip(url, fetched)
        else:
            next_url = None


def _interval(value: Any) -> tuple[str | None, str | None]:
    """``start/end`` or an instant -> (start, end) as UTC text; raises ValueError."""
    text = clean_text(value)
    if text is None:
        raise ValueError("no phenomenonTime")
    start, _, end = text.partition("/")
    begin = parse_datetime(start)
    finish = parse_datetime(end) if end else begin
    if begin is not None and finish is not None and finish < begin:
        raise ValueError(f"phenomenonTime {text!r} ends before it starts")
    return begin, finish


def _thing_location(thing: dict[str, Any], to_target: Any) -> dict[str, Any] | None:
    for location in thing.get("Locations") or []:
        geometry = location.get("location")
        if isinstance(geometry, dict) and geometry.get("type") == "Feature":
            geometry = geometry.get("geometry")
        try:
            geom, _ = read_geometry(geometry, to_target)
        except ValueError:
            continue
        if geom is not None:
            point = geom if geom.geom_type == "Point" else geom.centroid
            return point.__geo_interface__
    return None


def read_sensorthings(
    root: str,
    *,
    layer_names: Sequence[str] | None = None,
    time_from: str | None = None,
    time_to: str | None = None,
    http_get: HttpGet = urllib_get,
    timeout: float = DEFAULT_TIMEOUT,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_pages: int = DEFAULT_MAX_PAGES,
    target_srid: int = DEFAULT_SRID,
    source: str | None = None,
) -> ImportResult:
    """Observations of the selected datastreams of a SensorThings service.

    :param root: service root URL, e.g. ``https://iot.hamburg.de/v1.1``.
    :param layer_names: keep datastreams whose ``properties.layerName`` is one of these.
    :param time_from: only observations whose phenomenonTime starts at or after this
        (ISO 8601); ``time_to``: ... and before this.
    :raises SensorThingsError: when the service cannot be read.
    """
    wanted = set(layer_names or [])
    to_target = transformer("EPSG:4326", target_srid)  # SensorThings locations are GeoJSON
    label = source or f"SensorThings API {root.rstrip('/')}"
    result = ImportResult([], dict(FIELDS), GEOMETRY_TYPE, target_srid)
    things_url = build_url(root, "Things", {"$expand": "Locations,Datastreams", "$top": page_size})
    time_filter = _time_filter(time_from, time_to)
    for thing in paged(things_url, http_get, timeout=timeout, max_pages=max_pages):
        location = _thing_location(thing, to_target)
        for datastream in thing.get("Datastreams") or []:
            layer = ((datastream.get("properties") or {}).get("layerName")) or None
            if wanted and layer not in wanted:
                continue
            stream_id = datastream.get("@iot.id")
            observations_url = build_url(
                root,
                f"Datastreams({_key(stream_id)})/Observations",
                {
                    "$select": "@iot.id,phenomenonTime,result",
                    "$orderby": "phenomenonTime asc",
                    "$filter": time_filter,
                    "$top": page_size,
                },
            )
            unit = (datastream.get("unitOfMeasurement") or {}).get("name")
            records = _observations(
                paged(observations_url, http_get, timeout=timeout, max_pages=max_pages),
                thing,
                datastream,
                layer,
                unit,
                label,
                result,
            )
            for record in records:
                result.features.append(feature(record, location))
    dedupe_ids(result, "SensorThings")
    return result


def _key(entity_id: Any) -> str:
    """An entity id in a URL path: numbers bare, strings quoted (``'abc'``)."""
    if isinstance(entity_id, int):
        return str(entity_id)
    return "'" + str(entity_id).replace("'", "''") + "'"


def _time_filter(time_from: str | None, time_to: str | None) -> str | None:
    clauses = []
    if time_from:
        clauses.append(f"phenomenonTime ge {parse_datetime(time_from)}")
    if time_to:
        clauses.append(f"phenomenonTime lt {parse_datetime(time_to)}")
    return " and ".join(clauses) or None


def _observations(
    observations: Iterable[dict[str, Any]],
    thing: dict[str, Any],
    datastream: dict[str, Any],
    layer: str | None,
    unit: str | None,
    label: str,
    result: ImportResult,
) -> Iterator[dict[str, Any]]:
    stream_id = str(datastream.get("@iot.id"))
    for index, observation in enumerate(observations):
        ref = f"Datastreams({stream_id}) observation {observation.get('@iot.id', index)}"
        try:
            start, end = _interval(observation.get("phenomenonTime"))
            value = parse_number(observation.get("result"))
            if value is None:
                raise ValueError("no result")
        except ValueError as err:
            result.reject(ref, str(err))
            continue
        yield {
            "id": f"{stream_id}:{start}",
            "thing_id": str(thing.get("@iot.id")),
            "thing_name": clean_text(thing.get("name")),
            "datastream_id": stream_id,
            "layer_name": layer,
            "unit": clean_text(unit),
            "phenomenon_start": start,
            "phenomenon_end": end,
            "result": value,
            "source": label,
        }
