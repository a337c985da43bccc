"""One generic Processing algorithm, instantiated per process description of a server."""

from __future__ import annotations

import copy
import json
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
)

from .client import JobCancelled, ServerError
from .outputs import (
    find_published,
    log_text,
    oapif_layer,
    split_results,
    unwrap,
    write_raster,
    write_text,
    write_vector,
)
from .schema_mapping import (
    InputSpec,
    OutputSpec,
    classify,
    classify_output,
    make_parameter,
    parameter_name,
    to_request_value,
)
from .server import Server

JOB_ID = "JOB_ID"
PUBLISHED = "PUBLISHED"


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


class OgcProcessAlgorithm(QgsProcessingAlgorithm):
    """An OGC API - Processes process as a QGIS Processing algorithm.

    Everything it shows comes from the process description, so ``createInstance`` and
    ``initAlgorithm`` are deterministic (Model Designer and batch mode rebuild it often).
    """

    def __init__(self, server: Server, description: dict[str, Any]):
        super().__init__()
        self.server = server
        self.description = description
        self.process_id = str(description["id"])
        inputs = description.get("inputs") or {}
        outputs = description.get("outputs") or {}
        self.input_specs: list[InputSpec] = [
            classify(key, value if isinstance(value, dict) else {})
            for key, value in inputs.items()]
        self.output_specs: list[OutputSpec] = [
            classify_output(key, value if isinstance(value, dict) else {})
            for key, value in outputs.items()]

    # -- identity --------------------------------------------------------------------------
    def createInstance(self):
        return OgcProcessAlgorithm(self.server, copy.deepcopy(self.description))

    def name(self) -> str:
        return f"{self.server.key}_{parameter_name(self.process_id).lower()}"

    def displayName(self) -> str:
        return _text(self.description.get("title")) or self.process_id

    def group(self) -> str:
        return self.server.name

    def groupId(self) -> str:
        return self.server.key

    def tags(self) -> list[str]:
        keywords = [str(k) for k in self.description.get("keywords") or []]
        return [*keywords, self.process_id, "ogcapi", "OGC API Processes", self.server.name]

    def shortDescription(self) -> str:
        return _text(self.description.get("description"))

    def shortHelpString(self) -> str:
        parts = [f"<p>{_text(self.description.get('description'))}</p>",
                 f"<p>Process <code>{self.process_id}</code> "
                 f"(version {self.description.get('version', '?')}) on {self.server.url}</p>"]
        if self.input_specs:
            parts.append("<h3>Inputs</h3><ul>")
            parts += [f"<li><b>{s.title}</b>: {s.description}</li>" for s in self.input_specs]
            parts.append("</ul>")
        if self.output_specs:
            parts.append("<h3>Outputs</h3><ul>")
            parts += [f"<li><b>{s.title}</b>: {s.description}</li>" for s in self.output_specs]
            parts.append("</ul>")
        return "".join(parts)

    def helpUrl(self) -> str:
        for link in self.description.get("links") or []:
            if link.get("rel") == "about" and link.get("href"):
                return str(link["href"])
        return ""

    # -- parameters ------------------------------------------------------------------------
    def initAlgorithm(self, config=None):
        for spec in self.input_specs:
            self.addParameter(make_parameter(spec))
        for spec in self.output_specs:
            if spec.kind == "vector":
                self.addParameter(QgsProcessingParameterFeatureSink(
                    spec.name, spec.title, optional=True, createByDefault=True))
            elif spec.kind == "raster":
                self.addParameter(QgsProcessingParameterRasterDestination(
                    spec.name, spec.title, optional=True, createByDefault=True))
            elif spec.kind == "text":
                self.addOutput(QgsProcessingOutputString(spec.name, spec.title))
            else:
                self.addParameter(QgsProcessingParameterFileDestination(
                    spec.name, spec.title, "JSON files (*.json)", optional=True,
                    createByDefault=False))
        self.addOutput(QgsProcessingOutputString(JOB_ID, "Job id"))
        self.addOutput(QgsProcessingOutputString(PUBLISHED, "Published results (items URLs)"))

    # -- execution -------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):
        inputs: dict[str, Any] = {}
        for spec in self.input_specs:
            try:
                value = to_request_value(spec, self, parameters, context, feedback)
            except ValueError as err:
                raise QgsProcessingException(f"{spec.title}: {err}") from err
            if value is not None:
                inputs[spec.input_id] = value
        client = self.server.client()
        job: dict[str, str | None] = {"id": None}

        def on_job(job_id: str) -> None:
            job["id"] = job_id
            feedback.pushInfo(f"job {job_id} submitted to {self.server.url}")

        def on_progress(percent: float | None, message: str) -> None:
            if percent is not None:
                feedback.setProgress(max(0.0, min(100.0, percent)))
            if message:
                feedback.pushInfo(message)

        try:
            media_type, raw = client.run(self.process_id, inputs, on_progress,
                                         feedback.isCanceled, on_job=on_job)
        except JobCancelled as err:
            feedback.reportError(f"{err}; the job was cancelled on the server", False)
            raise QgsProcessingException(f"{self.displayName()}: {err}") from err
        except ServerError as err:
            feedback.reportError(f"{self.displayName()}: {err}", True)
            raise QgsProcessingException(f"{self.displayName()}: {err}") from err

        values = split_results(media_type, raw, self.output_specs)
        results: dict[str, Any] = {JOB_ID: job["id"] or ""}
        published: list[str] = []
        for spec in self.output_specs:
            if spec.output_id not in values:
                continue
            value = unwrap(values[spec.output_id])
            if spec.kind == "vector":
                results[spec.name] = write_vector(self, parameters, context, spec, value)
                count = len(value.get("features") or []) if isinstance(value, dict) else 0
                feedback.pushInfo(f"{spec.title}: {count} features")
            elif spec.kind == "raster":
                results[spec.name] = write_raster(self, parameters, context, spec, value, client)
            elif spec.kind == "text":
                text = value if isinstance(value, str) else json.dumps(value)
                results[spec.name] = text
                feedback.pushInfo(f"{spec.title}: {log_text(text)}")
            else:
                path = self.parameterAsFileOutput(parameters, spec.name, context)
                if path:
                    results[spec.name] = write_text(path, value)
                feedback.pushInfo(f"{spec.title}: {log_text(value)}")
                for entry in find_published(value):
                    published.append(entry["href"])
                    self._load_published(entry, context, feedback)
        results[PUBLISHED] = "\n".join(published)
        return results

    def _load_published(self, entry: dict[str, Any], context, feedback) -> None:
        layer = oapif_layer(entry, self.server.authcfg)
        if not layer.isValid():
            feedback.reportError(f"cannot open the published collection {entry['href']}", False)
            return
        feedback.pushInfo(f"published: {entry['href']}")
        context.temporaryLayerStore().addMapLayer(layer)
        details = QgsProcessingContext.LayerDetails(layer.name(), context.project(), layer.name())
        context.addLayerToLoadOnCompletion(layer.id(), details)
