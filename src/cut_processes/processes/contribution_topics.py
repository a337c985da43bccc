"""Process ``contribution-topics`` (Themen von Bürgerbeiträgen): classify and/or discover.

Redaction runs first: every title and text is redacted (``analysis/redaction.py``) before
anything else reads it, and only redacted text leaves the process. Classification uses a
shipped ONNX topic model (``ml/topics.py``) or a model trained in the job from ``labelled``
examples of the same proceeding; discovery factorises TF-IDF with NMF
(``analysis/topics.py``). Texts are never logged.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, ClassVar

import numpy as np
import shapely

from cut_processes.analysis import topics as topic_analysis
from cut_processes.analysis.german import contribution_text, looks_german
from cut_processes.analysis.redaction import KINDS, redact
from cut_processes.io.inputs import FeatureSet, InputProblem, resolve_features, to_crs84
from cut_processes.processes.base import CutProcessor, InputTooLargeError, utc_now
from cut_processes.processes.context import resolve_context

PROCESS_ID = "contribution-topics"
DEFAULT_MODEL = "dipas-mobility-topics"
DOCS = "https://github.com/connected-urban-twins/cut-processes/blob/main/docs"
#: Longer texts are analysed on their first characters only (flagged ``truncated``).
MAX_TEXT_CHARS = 20_000
MAX_CONTRIBUTIONS = 100_000
MIN_LABELLED = 10
DISCOVER_REVIEW_THRESHOLD = 0.5
IN_JOB_REVIEW_THRESHOLD = 0.5

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"en": "Topics of citizen contributions", "de": "Themen von Bürgerbeiträgen"},
    "description": {
        "en": "Assigns topics to citizen contributions (DIPAS and similar) with a shipped "
        "model or a model trained in the job from labelled examples of the same proceeding, "
        "and/or discovers topics without labels. Per contribution: topics, scores, best "
        "topic, confidence, the terms that drove it and a review flag; per topic: keywords, "
        "size, representative contributions and, for located contributions, a point cluster. "
        "Personal data (e-mail, phone, URLs with paths, IBAN, names after salutations) is "
        "redacted before anything else reads the texts.",
        "de": "Ordnet Bürgerbeiträgen (DIPAS u. a.) Themen zu, mit einem mitgelieferten Modell "
        "oder einem im Job aus gelabelten Beispielen desselben Verfahrens trainierten Modell, "
        "und/oder entdeckt Themen ohne Labels. Je Beitrag: Themen, Scores, bestes Thema, "
        "Konfidenz, ausschlaggebende Begriffe und Prüfhinweis; je Thema: Schlagwörter, "
        "Größe, typische Beiträge und für verortete Beiträge ein Punktcluster. "
        "Personenbezogene Daten werden vorab geschwärzt.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["participation", "Bürgerbeteiligung", "DIPAS", "topics", "NLP", "AI"],
    "links": [
        {"type": "text/html", "rel": "about", "title": "Documentation",
         "href": f"{DOCS}/processes/contribution-topics.md", "hreflang": "en-US"},
        {"type": "application/json", "rel": "describedby",
         "title": "Model card: dipas-mobility-topics", "href": "/models/dipas-mobility-topics"},
        {"type": "application/json", "rel": "describedby",
         "title": "Model card: cycling-dialogue-categories",
         "href": "/models/cycling-dialogue-categories"},
    ],
    "inputs": {
        "contributions": {
            "title": "Contributions",
            "description": "Contributions with title and/or text (optional geometry, "
            "category, date): an inline GeoJSON FeatureCollection in the contributions "
            "schema or a DIPAS PDS GeoJSON export (contributionContent), a DIPAS CSV export "
            "as a string, {\"href\": ...}, or {\"collection\": \"contributions\", \"bbox\": "
            "[...], \"filter\": \"CQL2\"}. Ids must be unique.",
            "schema": {"oneOf": [
                {"type": "object", "contentMediaType": "application/geo+json"},
                {"type": "string", "contentMediaType": "text/csv"},
            ]},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "mode": {
            "title": "Mode",
            "description": "classify: assign the labels of a model; discover: find topics "
            "without labels; both.",
            "schema": {"type": "string", "enum": ["classify", "discover", "both"],
                       "default": "both"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "model": {
            "title": "Model",
            "description": "Id of a shipped (or the server's own) topic model: "
            "dipas-mobility-topics (12 mobility topics, multi-label) or "
            "cycling-dialogue-categories (8 cycling categories). Ignored with labelled.",
            "schema": {"type": "string", "default": DEFAULT_MODEL},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "labelled": {
            "title": "Labelled examples",
            "description": f"At least {MIN_LABELLED} contributions of the same proceeding "
            "with their topics, [{\"id\": ..., \"topics\": [...]}]: the job trains a model "
            "on them, reports its cross-validated quality and applies it to the rest.",
            "schema": {"type": "array", "items": {
                "type": "object",
                "properties": {"id": {"type": ["string", "integer"]},
                               "topics": {"type": "array", "items": {"type": "string"}}},
                "required": ["id", "topics"], "additionalProperties": False}},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "topic_count": {
            "title": "Number of topics (discover)",
            "description": "Topics to discover; automatic (about one per 25 contributions, "
            "2 to 12) when left out.",
            "schema": {"type": "integer", "minimum": 2, "maximum": topic_analysis.MAX_TOPICS},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "stopwords": {
            "title": "Extra stopwords (discover)",
            "description": "Words to ignore in discovery, e.g. the proceeding's place names.",
            "schema": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "language": {
            "title": "Language",
            "description": "Language of the texts (German only for now).",
            "schema": {"type": "string", "enum": ["de"], "default": "de"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "redact": {
            "title": "Redact personal data",
            "description": "Replace e-mail addresses, phone numbers, URLs with paths, IBANs "
            "and names after salutations by placeholders ([E-MAIL], [NAME], ...).",
            "schema": {"type": "boolean", "default": True},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "publish": {
            "title": "Publish",
            "description": "Also write the result into the collection "
            "contribution-topics-results.",
            "schema": {"type": "boolean", "default": False},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "contributions": {
            "title": "Contributions with topics",
            "description": "The contributions (CRS84, input ids, redacted texts) plus topics, "
            "scores, topic, confidence, explanation, needs_review, method, model; with "
            "discover also discovered_topic and discovered_confidence.",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
        "topics": {
            "title": "Topics",
            "description": "classified and/or discovered topics: label or generated name, "
            "keywords, size, representative ids, point cluster (centroid, bbox in CRS84).",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
        "summary": {
            "title": "Summary",
            "description": "counts, redactions per kind, model quality (in-job models).",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
        "provenance": {
            "title": "Provenance",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
    },
    "example": {
        "inputs": {
            "contributions": {"collection": "contributions"},
            "mode": "both",
            "model": "dipas-mobility-topics",
            "topic_count": 8,
        }
    },
}


class ContributionTopicsProcessor(CutProcessor):
    """Topics of citizen contributions."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = PROCESS_METADATA

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        started = utc_now()
        mode = inputs["mode"]
        self.progress(2, "reading contributions")
        features = self._read(inputs["contributions"])
        records = _records(features)
        self.progress(10, "redacting personal data")
        redactions = dict.fromkeys(KINDS, 0)
        for rec in records:
            for key in ("title", "text"):
                if inputs["redact"] and rec[key]:
                    done = redact(rec[key])
                    rec[key] = done.text
                    for kind, count in done.counts.items():
                        redactions[kind] += count
        documents = [_document(rec) for rec in records]
        outputs = [{} for _ in records]
        topics: dict[str, Any] = {}
        summary: dict[str, Any] = {"contributions": len(records),
                                   "redactions": redactions if inputs["redact"] else None,
                                   "truncated": sum(r["truncated"] for r in records)}
        models: list[dict[str, str]] = []
        located = [g for g in features.geometries]
        if mode in ("classify", "both"):
            self.progress(20, "classifying")
            classified, quality, provenance = self._classify(inputs, records, documents, outputs)
            topics["classified"] = _summaries(classified, features, located)
            if quality is not None:
                summary["model_quality"] = quality
            models.extend(provenance)
        if mode in ("discover", "both"):
            self.progress(60, "discovering topics")
            topics["discovered"] = self._discover(inputs, records, documents, outputs,
                                                  features, located, mode == "discover")
        foreign = 0
        for doc, out in zip(documents, outputs, strict=True):
            if not looks_german(doc):  # the models know German only: a human should look
                foreign += 1
                out.update(needs_review=True, note="the text does not look German")
        summary["not_german"] = foreign
        summary["needs_review"] = sum(bool(o.get("needs_review")) for o in outputs)
        if "classified" in topics:
            summary["per_topic"] = {t["label"]: t["size"] for t in topics["classified"]}
        self.progress(90, "shaping output")
        collection = _collection(features, records, outputs)
        result: dict[str, Any] = {"contributions": collection, "topics": topics,
                                  "summary": summary}
        result["provenance"] = self.provenance(
            {k: v for k, v in inputs.items() if k != "labelled"} | (
                {"labelled": f"{len(inputs['labelled'])} examples"}
                if inputs.get("labelled") else {}), started, models)
        if inputs["publish"]:
            from cut_processes.processes.publish import publish_feature_collection

            # `cut-twin run` has no job: its publication gets an id of its own.
            job_id = getattr(self, "job_id", None) or f"local-{uuid.uuid4()}"
            summary["published"] = publish_feature_collection(PROCESS_ID, job_id, collection)
        self.progress(100, "done")
        return result

    # -- reading ----------------------------------------------------------------------------
    def _read(self, value: Any) -> FeatureSet:
        if isinstance(value, str):
            value = _csv_collection(value)
        elif isinstance(value, dict) and value.get("type") == "FeatureCollection":
            value = _unlocated_dipas(value)
        context = resolve_context(self.processor_def, self.allow_local_paths)
        context.max_features = min(context.max_features, MAX_CONTRIBUTIONS)
        try:
            return resolve_features("contributions", value, context)
        except InputProblem as problem:
            if "at most" in problem.problem:
                raise InputTooLargeError("contributions", problem.problem) from problem
            raise

    # -- classification ----------------------------------------------------------------------
    def _classify(self, inputs, records, documents, outputs):
        from cut_processes.ml import topics as ml_topics

        labelled = inputs.get("labelled")
        quality = None
        known: dict[int, list[str]] = {}
        if labelled:
            model, quality, known = _train_in_job(labelled, records, documents)
            provenance = []
            method = "classify (model trained in the job on the labelled examples)"
        else:
            try:
                model, loaded = ml_topics.shipped_model(inputs["model"])
            except LookupError as err:
                raise InputProblem("model", str(err)) from err
            provenance = [loaded.provenance]
            method = "classify"
        docs = model.preprocess(documents)
        forms = topic_analysis.surface_forms(documents[:5000])
        probs, tfidf = model.run(docs)
        assigned = ml_topics.assign(probs, model.thresholds, model.multilabel)
        empty = np.array([not d.strip() for d in docs])
        confidence = ml_topics._confidence(probs, assigned, model.multilabel)
        threshold = model.review_threshold
        labels = model.labels
        for i, out in enumerate(outputs):
            best = int(probs[i].argmax())
            if i in known:
                names = known[i]
                out.update(topics=names, topic=names[0] if names else None, confidence=1.0,
                           explanation=[], needs_review=False, method="labelled")
            else:
                names = [labels[j] for j in np.flatnonzero(assigned[i])]
                if empty[i]:
                    out.update(topics=[], topic=None, confidence=0.0, explanation=[],
                               needs_review=True, method=method,
                               note="no usable words in title or text")
                else:
                    top = best if not model.multilabel or not names else int(
                        max(np.flatnonzero(assigned[i]), key=lambda j: probs[i, j]))
                    out.update(topics=names, topic=labels[top],
                               confidence=round(float(confidence[i]), 4),
                               explanation=[
                                   {**e, "term": topic_analysis.readable(e["term"], forms)}
                                   for e in model.explain(tfidf[i], top)],
                               needs_review=bool(confidence[i] < threshold), method=method)
            out["scores"] = {lab: round(float(probs[i, j]), 4) for j, lab in enumerate(labels)}
            out["model"] = model.ref
        classified = {
            "labels": labels,
            "assigned": [o["topics"] for o in outputs],
            "strength": probs,
            "keywords": _label_keywords(model, forms),
        }
        return classified, quality, provenance

    # -- discovery ---------------------------------------------------------------------------
    def _discover(self, inputs, records, documents, outputs, features, located, primary):
        found = topic_analysis.discover(documents, inputs.get("topic_count"),
                                        inputs.get("stopwords") or [])
        names = [topic_analysis.topic_name(k) for k in found.keywords]
        for i, out in enumerate(outputs):
            t = int(found.assignment[i])
            name = names[t] if t >= 0 else None
            conf = round(float(found.confidence[i]), 4)
            if primary:
                out.update(
                    topics=[name] if name else [], topic=name, confidence=conf,
                    scores={names[j]: round(float(found.weights[i, j]), 4)
                            for j in range(found.topic_count)},
                    explanation=found.explanations[i],
                    needs_review=bool(conf < DISCOVER_REVIEW_THRESHOLD),
                    method="discover (NMF on TF-IDF)", model=None)
            else:
                out.update(discovered_topic=name, discovered_confidence=conf)
        result = []
        ids = features.ids
        for t in range(found.topic_count):
            members = np.flatnonzero(found.assignment == t)
            reps = topic_analysis.representatives(members, found.weights[:, t])
            result.append({
                "topic": t,
                "name": names[t],
                "keywords": found.keywords[t],
                "size": int(members.size),
                "representatives": [ids[i] for i in reps],
                "cluster": _cluster(located, members, features.crs),
            })
        return result


# -- helpers ------------------------------------------------------------------------------------

def _csv_collection(text: str) -> dict[str, Any]:
    """A DIPAS CSV export (string) as a FeatureCollection without geometries."""
    import tempfile
    from pathlib import Path

    from cut_processes.io.dipas import read_dipas_csv
    from cut_processes.io.records import UnreadableFileError

    if not text.strip():
        raise InputProblem("contributions", "the CSV export is empty")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contributions.csv"
        path.write_text(text, encoding="utf-8")
        try:
            result = read_dipas_csv([path])
        except UnreadableFileError as err:
            raise InputProblem("contributions", str(err).replace(str(path), "CSV")) from err
    if not result.features:
        raise InputProblem("contributions", "the CSV export holds no usable contribution")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": f["properties"]["id"], "geometry": None,
         "properties": f["properties"]} for f in result.features]}


def _unlocated_dipas(collection: dict[str, Any]) -> dict[str, Any]:
    """DIPAS PDS exports: ``dipasLocated: false`` or ``Point [0, 0]`` means no location."""
    features = collection.get("features")
    if not isinstance(features, list):
        return collection
    out = copy.copy(collection)
    out["features"] = []
    for item in features:
        if isinstance(item, dict) and isinstance(item.get("properties"), dict):
            props = item["properties"]
            geometry = item.get("geometry")
            unlocated = props.get("dipasLocated", True) in (False, "false", 0, "0") or (
                isinstance(geometry, dict) and geometry.get("type") == "Point"
                and geometry.get("coordinates") in ([0, 0], [0.0, 0.0]))
            if unlocated and geometry is not None:
                item = {**item, "geometry": None}
        out["features"].append(item)
    return out


def _records(features: FeatureSet) -> list[dict[str, Any]]:
    """Title, text and id of each contribution; duplicate ids and bad types are refused."""
    seen: dict[str, int] = {}
    records = []
    for i, (fid, props) in enumerate(zip(features.ids, features.properties, strict=True)):
        key = str(fid)
        if key in seen:
            raise InputProblem("contributions",
                               f"duplicate id {fid!r} (features {seen[key]} and {i}); "
                               "ids must be unique")
        seen[key] = i
        title = props.get("title")
        text = props.get("text", props.get("contributionContent"))
        for name, value in (("title", title), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise InputProblem("contributions",
                                   f"contribution {fid!r}: {name} must be a string, "
                                   f"got {type(value).__name__}")
        truncated = False
        if text and len(text) > MAX_TEXT_CHARS:
            text, truncated = text[:MAX_TEXT_CHARS], True
        records.append({"_id": key, "title": title, "text": text, "truncated": truncated})
    return records


def _document(record: dict[str, Any]) -> str:
    return contribution_text(record["title"], record["text"])


def _train_in_job(labelled, records, documents):
    from cut_processes.ml import topics as ml_topics

    index: dict[str, int] = {}
    # ids as the features carry them (strings and integers compare by their text)
    for i, rec in enumerate(records):
        index.setdefault(rec["_id"], i)
    rows, topic_lists = [], []
    for item in labelled:
        key = str(item["id"])
        if key not in index:
            raise InputProblem("labelled", f"id {item['id']!r} is not among the contributions")
        rows.append(index[key])
        topic_lists.append(list(dict.fromkeys(item["topics"])))
    if len(set(rows)) != len(rows):
        raise InputProblem("labelled", "an id is labelled twice")
    if len(rows) < MIN_LABELLED:
        raise InputProblem("labelled", f"{len(rows)} examples; at least {MIN_LABELLED} are "
                           "needed to train a model")
    labels = sorted({t for topics in topic_lists for t in topics})
    if len(labels) < 2:
        raise InputProblem("labelled", "the examples need at least two different topics")
    multilabel = any(len(t) != 1 for t in topic_lists)
    targets = np.array([[int(lab in t) for lab in labels] for t in topic_lists])
    texts = [documents[i] for i in rows]
    quality = ml_topics.cross_validate(texts, targets, labels, multilabel=multilabel,
                                       folds=5, baseline=False)
    quality = {k: v for k, v in quality.items() if not k.startswith("_")}
    quality["method"] = "cross-validation on the labelled examples (shuffled, seed 42)"
    fitted = ml_topics.fit_topics(texts, targets, labels, multilabel=multilabel,
                                  lexicon_texts=documents)
    model = ml_topics.TopicModel.from_fitted(fitted, ref="in-job")
    model.review_threshold = IN_JOB_REVIEW_THRESHOLD
    return model, quality, dict(zip(rows, topic_lists, strict=True))


def _label_keywords(model, forms: dict[str, str]) -> list[list[str]]:
    """Per label the terms with the largest positive coefficients, as readable words."""
    out = []
    for j in range(len(model.labels)):
        order = np.argsort(-model.coef[:, j], kind="stable")[:8]
        out.append([topic_analysis.readable(model.terms[i], forms) for i in order
                    if model.coef[i, j] > 0])
    return out


def _cluster(geoms, members: np.ndarray, crs: int) -> dict[str, Any] | None:
    chosen = [geoms[i] for i in members if geoms[i] is not None]
    if not chosen:
        return None
    cluster = topic_analysis.point_cluster(chosen)
    if cluster is None:
        return None
    lon_lat = to_crs84(np.array([shapely.Point(cluster["centroid"]),
                                 shapely.Point(cluster["bbox"][:2]),
                                 shapely.Point(cluster["bbox"][2:])], dtype=object), crs)
    c, lo, hi = (shapely.get_coordinates(g)[0] for g in lon_lat)
    return {"located": cluster["located"],
            "centroid": [round(float(c[0]), 6), round(float(c[1]), 6)],
            "bbox": [round(float(v), 6) for v in (lo[0], lo[1], hi[0], hi[1])]}


def _summaries(classified, features, located) -> list[dict[str, Any]]:
    out = []
    ids = features.ids
    for j, label in enumerate(classified["labels"]):
        members = np.array([i for i, t in enumerate(classified["assigned"]) if label in t],
                           dtype=int)
        reps = topic_analysis.representatives(members, classified["strength"][:, j])
        out.append({"label": label, "keywords": classified["keywords"][j],
                    "size": int(members.size), "representatives": [ids[i] for i in reps],
                    "cluster": _cluster(located, members, features.crs)})
    return out


def _collection(features: FeatureSet, records, outputs) -> dict[str, Any]:
    geoms = features.geometries
    present = np.array([g is not None for g in geoms])
    lonlat = np.array([None] * len(geoms), dtype=object)
    if present.any():
        lonlat[present] = to_crs84(geoms[present], features.crs)
    out_features = []
    for i, fid in enumerate(features.ids):
        props = {k: v for k, v in features.properties[i].items()
                 if k not in ("contributionContent",)}
        props["title"] = records[i]["title"]
        props["text"] = records[i]["text"]
        if records[i]["truncated"]:
            props["truncated"] = True
        props.update(outputs[i])
        out_features.append({
            "type": "Feature", "id": fid,
            "geometry": shapely.geometry.mapping(lonlat[i]) if lonlat[i] is not None else None,
            "properties": props,
        })
    return {"type": "FeatureCollection", "features": out_features}
