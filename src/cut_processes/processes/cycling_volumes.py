"""Process ``cycling-volumes`` (Radverkehrsmengen): counters, network volumes, most-used routes.

One process with three analyses that share their inputs:

* ``counters``: per counting station a model of daily counts from calendar and weather,
  the adjusted trend, anomalies, DTV with imputation and forecasts
  (``analysis/cycling_counts.py``);
* ``network``: crowdsourced segment volumes calibrated to counted cyclists at the stations
  that lie on the network, with leave-one-station-out validation
  (``analysis/cycling_network.py``);
* ``corridors``: segments joined into continuous corridors, ranked by ride-kilometres, with
  their overlap with an official route network and week-to-week stability.

Which analyses run follows from the inputs given unless ``analyses`` names them.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import numpy as np
import shapely

from cut_processes.analysis import cycling_counts, cycling_network
from cut_processes.analysis.cycling_network import NetworkVolumes
from cut_processes.io.cycling_inputs import (
    Counts,
    Stations,
    read_counts,
    read_routes,
    read_segments,
    read_stations,
)
from cut_processes.io.inputs import InputProblem, to_crs84
from cut_processes.processes.base import CutProcessor, utc_now
from cut_processes.processes.context import resolve_context

PROCESS_ID = "cycling-volumes"
DOCS = "https://github.com/connected-urban-twins/cut-processes/blob/main/docs"
ANALYSES = ("counters", "network", "corridors")
FEDERAL_STATES = (
    "BW",
    "BY",
    "BE",
    "BB",
    "HB",
    "HH",
    "HE",
    "MV",
    "NI",
    "NW",
    "RP",
    "SL",
    "SN",
    "ST",
    "SH",
    "TH",
)
WEATHER_PROPERTIES = {
    "min_temperature_c": {"type": ["number", "null"]},
    "max_temperature_c": {"type": ["number", "null"]},
    "precipitation_mm": {"type": ["number", "null"], "minimum": 0},
    "cloud_cover_percent": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
    "sunshine_hours": {"type": ["number", "null"], "minimum": 0, "maximum": 24},
}
_FEATURES_OR_REF = {"type": "object", "contentMediaType": "application/geo+json"}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"en": "Cycling volumes", "de": "Radverkehrsmengen"},
    "description": {
        "en": "Counting stations plus crowdsourced rides: per station a model of daily counts "
        "from calendar (weekday, public and school holidays of the federal state, season) and "
        "weather, the adjusted trend (index, base year = 100), anomalies (outages, drops, "
        "surges, level shifts) with reasons, DTV with gaps imputed and forecasts; crowdsourced "
        "segment volumes calibrated to counted cyclists (leave-one-station-out validated); "
        "the most-used corridors ranked by ride-kilometres, their overlap with an official "
        "route network and their stability across weeks.",
        "de": "Zählstellen und Crowdsourcing-Daten: je Zählstelle ein Modell der Tageswerte "
        "aus Kalender (Wochentag, Feiertage und Schulferien des Bundeslands, Jahreszeit) und "
        "Wetter, der bereinigte Trend (Index, Basisjahr = 100), Auffälligkeiten (Ausfälle, "
        "Einbrüche, Spitzen, Niveausprünge) mit Begründung, DTV mit Lückenschätzung und "
        "Prognosen; Crowdsourcing-Streckenwerte auf gezählte Radfahrende kalibriert; die "
        "meistbefahrenen Korridore nach Fahrtkilometern, ihre Überdeckung mit einem "
        "offiziellen Routennetz (Velorouten) und ihre Stabilität über Wochen.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": [
        "cycling",
        "Radverkehr",
        "counting stations",
        "Zählstellen",
        "DB Rad+",
        "Velorouten",
        "DTV",
        "anomalies",
    ],
    "links": [
        {
            "type": "text/html",
            "rel": "about",
            "title": "Documentation",
            "href": f"{DOCS}/processes/cycling-volumes.md",
            "hreflang": "en-US",
        },
    ],
    "inputs": {
        "analyses": {
            "title": "Analyses",
            "description": "Which analyses to run: counters (needs counts), network (needs "
            "segments; calibrates with stations and counts), corridors (needs segments). "
            "Default: every analysis the given inputs allow.",
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": list(ANALYSES)},
                "minItems": 1,
                "uniqueItems": True,
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "counts": {
            "title": "Counts",
            "description": "Daily or sub-daily counts per station: a FeatureCollection of "
            "records (station_id, date or datetime, count, optional direction and weather: "
            "min_temperature_c, max_temperature_c, precipitation_mm, cloud_cover_percent, "
            'sunshine_hours), {"collection": "bike-counts", "filter": ...}, '
            '{"href": ...}, a CSV in the Munich open-data format as a string, or '
            '{"sensorthings": <service root>, "layer_name": ..., "from": ..., '
            '"to": ...} (allow-listed roots only).',
            "schema": {
                "oneOf": [
                    {"type": "object"},
                    {"type": "string", "contentMediaType": "text/csv"},
                ]
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "stations": {
            "title": "Counting stations",
            "description": "Points with id, name, optional federal_state: a "
            'FeatureCollection, {"collection": "counting-stations"}, {"href": ...} or '
            "a Munich stations CSV as a string. Needed to calibrate the network.",
            "schema": {
                "oneOf": [
                    {"type": "object"},
                    {"type": "string", "contentMediaType": "text/csv"},
                ]
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "station_ids": {
            "title": "Station ids",
            "description": "Analyse only these stations (all when left out).",
            "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "federal_state": {
            "title": "Federal state",
            "description": "Federal state (ISO 3166-2:DE code without DE-) whose public and "
            "school holidays apply to stations that do not name their own federal_state.",
            "schema": {"type": "string", "enum": list(FEDERAL_STATES)},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "fit_until": {
            "title": "Fit until",
            "description": "Fit the counter models on days up to this date only (later "
            "days are predicted: a held-out test).",
            "schema": {"type": "string", "format": "date"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "base_year": {
            "title": "Trend base year",
            "description": "Year whose adjusted level is 100 in the trend index "
            "(default: the first complete year of each station).",
            "schema": {"type": "integer", "minimum": 1990, "maximum": 2100},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "forecast": {
            "title": "Forecast days",
            "description": "Future days to forecast for every station, with their weather "
            "(forecast or scenario).",
            "schema": {
                "type": "array",
                "maxItems": 3660,
                "items": {
                    "type": "object",
                    "properties": {
                        "date": {"type": "string", "format": "date"},
                        **WEATHER_PROPERTIES,
                    },
                    "required": ["date"],
                    "additionalProperties": False,
                },
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "segments": {
            "title": "Crowdsourced segment volumes",
            "description": "LineStrings with rides per period (rides or DB Rad+'s anzahl; "
            "week_start/week_end or von/bis; optional segment_id, name, road_class): a "
            'FeatureCollection, {"collection": "segment-volumes", "filter": ...} or '
            '{"href": ...}. Several periods give the corridors\' stability.',
            "schema": _FEATURES_OR_REF,
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "official_routes": {
            "title": "Official route network",
            "description": "LineStrings of an official cycle route network (such as "
            "Hamburg's Velorouten): corridors report their share on it. A GeoJSON "
            "FeatureCollection, {\"collection\": \"bike-routes\"} or {\"href\": ...}.",
            "schema": _FEATURES_OR_REF,
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "top_n": {
            "title": "Number of corridors",
            "description": "How many of the most-used corridors to return.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 20},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "max_station_distance_m": {
            "title": "Station matching distance (m)",
            "description": "A station matches the nearest segment within this distance.",
            "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 500, "default": 25},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "point_tolerance_m": {
            "title": "Station point repair tolerance (m)",
            "description": "A station Point holding several positions within this distance "
            "is repaired to their mean (reported); further apart it is refused.",
            "schema": {"type": "number", "minimum": 0, "maximum": 1000, "default": 50},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "time_series": {
            "title": "Include daily time series",
            "description": "Return each station's daily counts, expected values and flags.",
            "schema": {"type": "boolean", "default": True},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "publish": {
            "title": "Publish",
            "description": "Also write stations, segments and corridors into the "
            "collections cycling-stations-results, cycling-segments-results and "
            "cycling-corridors-results.",
            "schema": {"type": "boolean", "default": False},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "stations": {
            "title": "Stations",
            "description": "Counting stations (CRS84) with model fit, DTV per year, trend "
            "index, anomalies and the segment they match.",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
        "time_series": {
            "title": "Time series",
            "description": "Per station: dates, counts, expected, interval, flags; forecasts.",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
        "segments": {
            "title": "Segments",
            "description": "Segments (CRS84) with rides per day, relative volume and, where "
            "calibrated, estimated daily cyclists with an interval.",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
        "corridors": {
            "title": "Corridors",
            "description": "The most-used corridors (CRS84 LineStrings) with rank, length, "
            "ride-km, volume statistics, names and share on the official network.",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
        "summary": {
            "title": "Summary",
            "description": "What ran, validation, stability, repaired and rejected records.",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
        "provenance": {
            "title": "Provenance",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
    },
    "example": {
        "inputs": {
            "counts": {"collection": "bike-counts"},
            "stations": {"collection": "counting-stations"},
            "segments": {"collection": "segment-volumes"},
            "official_routes": {"collection": "bike-routes"},
            "forecast": [
                {
                    "date": "2026-06-01",
                    "min_temperature_c": 12.0,
                    "max_temperature_c": 22.0,
                    "precipitation_mm": 0.0,
                    "cloud_cover_percent": 30,
                    "sunshine_hours": 9.0,
                }
            ],
            "top_n": 10,
            "time_series": False,
        }
    },
}


class CyclingVolumesProcessor(CutProcessor):
    """Cycling volumes: counters, network volumes, most-used corridors."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = PROCESS_METADATA

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        started = utc_now()
        analyses = _analyses(inputs)
        _check_dates(inputs)
        context = resolve_context(self.processor_def, self.allow_local_paths)
        self.progress(2, "reading inputs")
        stations = counts = segments = routes = None
        if inputs.get("stations") is not None:
            stations = read_stations(inputs["stations"], context,
                                     point_tolerance_m=inputs["point_tolerance_m"])
        if inputs.get("counts") is not None:
            counts = read_counts(inputs["counts"], context)
            if stations is None and counts.stations is not None:
                stations = counts.stations
        if inputs.get("segments") is not None:
            segments = read_segments(inputs["segments"], context)
        if inputs.get("official_routes") is not None:
            routes = read_routes(inputs["official_routes"], context)
        summary: dict[str, Any] = {"analyses": analyses, "inputs": {}}
        for name, item in (("stations", stations), ("counts", counts), ("segments", segments)):
            if item is not None:
                summary["inputs"][name] = {"records": len(item.records) if name == "counts"
                                           else len(item), **item.report.to_json()}
        result: dict[str, Any] = {}
        station_results: dict[str, Any] = {}
        if "counters" in analyses:
            station_results = self._counters(inputs, counts, stations, summary)
        network = None
        if "network" in analyses or "corridors" in analyses:
            network = NetworkVolumes.from_rows(
                segments.segment_ids, segments.geometries, segments.rides, segments.days,
                segments.periods, segments.names, segments.road_classes)
        if "network" in analyses:
            self.progress(60, "calibrating the network")
            self._calibrate(inputs, network, stations, station_results, summary)
        corridors = None
        if "corridors" in analyses:
            self.progress(75, "building corridors")
            corridors = self._corridors(inputs, network, routes, summary)
        self.progress(90, "shaping output")
        if stations is not None or station_results:
            result["stations"] = _stations_output(stations, station_results, network,
                                                  inputs.get("station_ids"))
        if station_results:
            result["time_series"] = {
                sid: {k: v for k, v in res.items() if k in ("daily", "forecast")}
                for sid, res in station_results.items()
            } if inputs["time_series"] else {
                sid: {"forecast": res.get("forecast")} for sid, res in station_results.items()
            }
        if network is not None:
            result["segments"] = _segments_output(network)
        if corridors is not None:
            result["corridors"] = corridors
        result["summary"] = summary
        result["provenance"] = self.provenance(inputs, started, [])
        result["provenance"]["methods"] = {
            "counters": cycling_counts.METHOD,
            "network": "median ratio counted/crowdsourced per road class (else global); "
            "log-normal interval",
            "corridors": "strokes of well-used segments (every-best-fit at nodes), ranked by "
            "ride-km",
        }
        if inputs["publish"]:
            summary["published"] = self._publish(result)
        self.progress(100, "done")
        return result

    # -- counters ---------------------------------------------------------------------------
    def _counters(self, inputs, counts: Counts, stations: Stations | None, summary):
        states: dict[str, str] = {}
        if stations is not None:
            states = {sid: st for sid, st in zip(stations.ids, stations.states, strict=True)
                      if st}
        self.progress(5, "building daily series")
        try:
            series = cycling_counts.daily_series(
                counts.records, states=states, default_state=inputs.get("federal_state"),
                stations=inputs.get("station_ids"))
        except InputProblem as problem:
            if problem.input_name == "stations":  # an id asked for in station_ids
                raise InputProblem("station_ids", problem.problem) from problem
            raise
        if stations is not None:
            unknown = sorted({s.station_id for s in series} - set(stations.ids))
            if unknown:
                summary["stations_without_location"] = {
                    "station_ids": unknown[:50],
                    "note": "counted, but not among the stations input: analysed without "
                    "location and not used to calibrate the network",
                }
        out: dict[str, Any] = {}
        repairs: list[str] = []
        skipped: list[dict[str, str]] = []
        first_problem: InputProblem | None = None
        for k, one in enumerate(series):
            self.progress(8 + 50 * k / max(len(series), 1), f"modelling station {one.station_id}")
            try:
                analysed = cycling_counts.analyse_station(
                    one, fit_until=inputs.get("fit_until"), base_year=inputs.get("base_year"),
                    forecast=inputs.get("forecast"))
            except InputProblem as problem:  # this station only: the others go on
                first_problem = first_problem or problem
                skipped.append({"station_id": one.station_id,
                                "input": problem.input_name, "reason": problem.problem})
                continue
            result = analysed.to_json()
            if len(one.complete) == len(result["daily"]["date"]):
                result["daily"]["complete"] = [bool(c) for c in one.complete]
            out[one.station_id] = result
            repairs.extend(f"station {one.station_id}: {r}" for r in one.repairs)
        if not out and first_problem is not None:
            raise first_problem
        summary["counters"] = {
            "stations": len(out),
            "anomalies": {sid: len(r["anomalies"]) for sid, r in out.items()},
            "repairs": repairs[:20],
        }
        if skipped:
            summary["counters"]["stations_skipped"] = skipped
        return out

    # -- network ----------------------------------------------------------------------------
    def _calibrate(self, inputs, network: NetworkVolumes, stations, station_results, summary):
        matches: list[tuple[str, int, float]] = []
        report: dict[str, Any] = {"periods": network.periods}
        not_covered: list[dict[str, str]] = []
        if stations is not None:
            # A station counting east/west lies on a segment running east-west, not on the
            # cross street it may be nearer to.
            bearings = [cycling_network.COMPASS.get(str(p.get("direction_1") or "").lower(),
                                                    np.nan) for p in stations.properties]
            index, distance = cycling_network.match_stations(
                stations.points, network.geometries, bearings_deg=bearings,
                max_distance_m=inputs["max_station_distance_m"])
            network.station_match = {
                sid: (int(i), float(d)) for sid, i, d in
                zip(stations.ids, index, distance, strict=True)}
        if not network.dated:
            report["note"] = ("the segments have no period (week_start/week_end): their rides "
                              "cannot be related to counted days, so volumes are relative only")
        elif stations is None or not station_results:
            report["note"] = "no stations with counts given: relative volumes only"
        else:
            for sid, (seg, _) in network.station_match.items():
                if sid not in station_results:
                    continue
                counted, coverage = cycling_network.counted_per_day(
                    station_results[sid]["daily"], network.days)
                if counted is None:
                    not_covered.append({"station_id": sid, "reason": (
                        f"its counts cover {coverage:.0%} of the segments' "
                        f"{len(network.days)} days (at least "
                        f"{cycling_network.MIN_COVERAGE:.0%} needed)")})
                    continue
                matches.append((sid, seg, counted))
        network.calibration = cycling_network.calibrate(
            network.rides_total, matches, road_class=network.road_classes,
            period_days=network.period_days)
        if matches:
            report["leave_one_station_out"] = network.calibration.leave_one_station_out()
        report.update(network.calibration.summary())
        report["stations_excluded"] = not_covered + report.get("stations_excluded", [])
        summary["network"] = report

    # -- corridors --------------------------------------------------------------------------
    def _corridors(self, inputs, network: NetworkVolumes, routes, summary):
        top_n = inputs["top_n"]
        found = cycling_network.build_corridors(
            network.geometries, network.rides_per_day, names=network.names, top_n=top_n)
        overlap = None
        if routes is not None:
            reach = shapely.box(*shapely.total_bounds(network.geometries)).buffer(1000.0)
            if not shapely.intersects(reach, shapely.union_all(routes.geometries)):
                raise InputProblem(
                    "official_routes",
                    "no official route lies within 1 km of the segments' extent: another "
                    "city, or another CRS?")
            names = [p.get("name") or p.get("routennummer") for p in routes.properties]
            overlap = cycling_network.official_overlap(
                found, routes.geometries,
                official_names=[None if n is None else str(n) for n in names])
        report: dict[str, Any] = {"count": len(found), "volume": network.volume_unit}
        if overlap is not None:
            report["official_network"] = {
                k: v for k, v in overlap.items() if k not in ("corridors", "not_on_official")}
            ranked = {c.rank: c for c in found}
            report["heavily_used_not_on_official"] = [
                {"rank": r["rank"], "names": ranked[r["rank"]].names,
                 "ride_km": round(ranked[r["rank"]].ride_km, 1),
                 "share_on_official": round(r["share_on_official"], 3)}
                for r in overlap["not_on_official"]]
        if len(network.periods) >= 2:
            report["stability"] = network.stability(found, top_n)
        summary["corridors"] = report
        by_rank = {r["rank"]: r for r in (overlap or {}).get("corridors", [])}
        features = []
        geoms = to_crs84(np.array([c.geometry for c in found], dtype=object))
        for corridor, geom in zip(found, geoms, strict=True):
            props = corridor.properties()
            props["volume_unit"] = network.volume_unit
            if network.calibration is not None:
                est = network.calibration.cyclists_estimated[corridor.segments]
                lengths = network.lengths[corridor.segments]
                ok = np.isfinite(est)
                props["cyclists_estimated_mean"] = (
                    round(float(np.average(est[ok], weights=lengths[ok])), 1)
                    if ok.any() else None)
            if corridor.rank in by_rank:
                row = by_rank[corridor.rank]
                props["share_official"] = round(row["share_on_official"], 3)
                props["official_names"] = row.get("official_names")
            props["segment_ids"] = [network.segment_ids[i] for i in corridor.segments]
            features.append({"type": "Feature", "id": f"corridor-{corridor.rank}",
                             "geometry": shapely.geometry.mapping(geom), "properties": props})
        return {"type": "FeatureCollection", "features": features}

    # -- publishing -------------------------------------------------------------------------
    def _publish(self, result: dict[str, Any]) -> dict[str, Any]:
        from cut_processes.processes.publish import publish_feature_collection

        job_id = getattr(self, "job_id", None) or f"local-{uuid.uuid4()}"
        published = {}
        for part in ("stations", "segments", "corridors"):
            collection = result.get(part)
            if collection is None:
                continue
            note = None
            if part == "stations":
                located = [f for f in collection["features"] if f.get("geometry") is not None]
                if len(located) < len(collection["features"]):
                    note = (f"{len(collection['features']) - len(located)} station(s) without "
                            "location not published (a results collection holds points)")
                collection = {"type": "FeatureCollection", "features": located}
            published[part] = publish_feature_collection(PROCESS_ID, job_id, collection,
                                                          part=part)
            if note:
                published[part]["note"] = note
        return published


# -- helpers ------------------------------------------------------------------------------------


def _analyses(inputs: dict[str, Any]) -> list[str]:
    given = {"counts": inputs.get("counts") is not None,
             "segments": inputs.get("segments") is not None}
    requested = inputs.get("analyses")
    if requested is None:
        requested = ([a for a in ANALYSES if (a == "counters" and given["counts"])
                      or (a != "counters" and given["segments"])])
        if not requested:
            raise InputProblem("counts", "give counts (counter analysis) and/or segments "
                               "(network volumes and corridors)")
    for analysis in requested:
        needed = "counts" if analysis == "counters" else "segments"
        if not given[needed]:
            raise InputProblem(needed, f"is required for the {analysis} analysis")
    if "network" in requested and inputs.get("counts") is not None and "counters" not in (
        requested
    ):
        requested = ["counters", *requested]  # calibration needs the stations' modelled days
    return [a for a in ANALYSES if a in requested]


def _segments_output(network: NetworkVolumes) -> dict[str, Any]:
    geoms = to_crs84(network.geometries)
    cal = network.calibration
    features = []
    for i, sid in enumerate(network.segment_ids):
        props: dict[str, Any] = {
            "segment_id": sid,
            "name": network.names[i],
            "road_class": network.road_classes[i],
            "length_m": round(float(network.lengths[i]), 1),
            ("rides_per_day" if network.dated else "rides"): round(
                float(network.rides_per_day[i]), 3),
        }
        if cal is not None:
            props["relative_volume"] = _num(cal.relative_volume[i], 3)
            props["cyclists_estimated"] = _num(cal.cyclists_estimated[i], 1)
            props["cyclists_low"] = _num(cal.cyclists_low[i], 1)
            props["cyclists_high"] = _num(cal.cyclists_high[i], 1)
            props["calibration"] = str(cal.calibration[i])
        features.append({"type": "Feature", "id": sid,
                         "geometry": shapely.geometry.mapping(geoms[i]),
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _num(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def _stations_output(stations: Stations | None, results: dict[str, Any],
                     network: NetworkVolumes | None, only: list[str] | None) -> dict[str, Any]:
    ids = list(stations.ids) if stations is not None else []
    known = set(ids)
    ids += [sid for sid in results if sid not in known]
    if only:
        wanted = set(only)
        ids = [sid for sid in ids if sid in wanted]
    position = {sid: k for k, sid in enumerate(stations.ids)} if stations is not None else {}
    located = {}
    if stations is not None:
        geoms = to_crs84(stations.points)
        located = dict(zip(stations.ids, geoms, strict=True))
    features = []
    for sid in ids:
        props: dict[str, Any] = {"station_id": sid}
        if stations is not None and sid in located:
            k = position[sid]
            props["name"] = stations.names[k]
            props["federal_state"] = stations.states[k]
        res = results.get(sid)
        if res is not None:
            props["model"] = res["model"]
            # the headline DTV is the latest year with counted days, not a year of imputation
            latest = [d for d in res["dtv"]
                      if d.get("dtv") is not None and d.get("days_counted", 1) > 0]
            if latest:
                props["dtv"] = latest[-1]["dtv"]
                props["dtv_year"] = latest[-1].get("year")
                props["share_imputed"] = latest[-1].get("share_imputed")
            props["dtv_by_year"] = res["dtv"]
            props["trend"] = res["trend"]
            props["anomalies"] = res["anomalies"]
            props["notes"] = res["notes"]
        else:
            props["note"] = "no counts for this station"
        if network is not None and sid in network.station_match:
            seg, dist = network.station_match[sid]
            props["segment_id"] = network.segment_ids[seg] if seg >= 0 else None
            props["segment_distance_m"] = _num(dist, 1)
        geom = located.get(sid)
        features.append({"type": "Feature", "id": sid,
                         "geometry": shapely.geometry.mapping(geom) if geom is not None else None,
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _check_dates(inputs: dict[str, Any]) -> None:
    """``fit_until`` and forecast dates: real days between 1990 and 2100 (JSON Schema's
    ``format: date`` is not enforced by the validator)."""
    from datetime import date

    def day(name: str, value: str) -> None:
        try:
            parsed = date.fromisoformat(value)
        except (TypeError, ValueError):
            raise InputProblem(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
        if not (1990 <= parsed.year <= 2100) or len(value) != 10:
            raise InputProblem(name, f"{value!r} is not a date between 1990 and 2100")

    if inputs.get("fit_until") is not None:
        day("fit_until", inputs["fit_until"])
    for k, item in enumerate(inputs.get("forecast") or []):
        day(f"forecast/{k}/date", item["date"])
