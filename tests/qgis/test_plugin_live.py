"""The plugin in headless QGIS against a live server: listing, running, progress, cancelling,
errors, published results, Model Designer and batch use."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import models_present
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)

# Footprints in the demo district (EPSG:25832), 10 m and 12 m squares.
SQUARES = [
    ("t1", 566000, 5933000, 10, 9.5, 7.0, 3),
    ("t2", 566030, 5933000, 12, 15.2, 12.1, None),
    ("t3", 566060, 5933000, 10, 6.1, 3.3, None),
]


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every progress value, info and error; optionally cancels after some progress."""

    def __init__(self, cancel_at: float | None = None):
        super().__init__()
        self.progress_values: list[float] = []
        self.infos: list[str] = []
        self.errors: list[tuple[str, bool]] = []
        self.cancel_at = cancel_at
        self.progressChanged.connect(self._on_progress)

    def _on_progress(self, value):
        self.progress_values.append(value)
        if self.cancel_at is not None and value >= self.cancel_at:
            self.cancel()

    def pushInfo(self, info):
        self.infos.append(info)
        super().pushInfo(info)

    def reportError(self, error, fatalError=False):
        self.errors.append((error, fatalError))
        super().reportError(error, fatalError)

    def job_id(self) -> str:
        for info in self.infos:
            if info.startswith("job ") and " submitted" in info:
                return info.split()[1]
        raise AssertionError(f"no job id in {self.infos}")


def buildings_layer(selected: int | None = None, negative: bool = False) -> QgsVectorLayer:
    layer = QgsVectorLayer(
        "Polygon?crs=EPSG:25832&field=id:string&field=measured_height:double"
        "&field=eaves_height:double&field=storeys:integer", "buildings", "memory")
    features = []
    for fid, x, y, size, height, eaves, storeys in SQUARES:
        feature = QgsFeature(layer.fields())
        feature.setAttributes([fid, -height if negative else height, eaves, storeys])
        feature.setGeometry(QgsGeometry.fromWkt(
            f"POLYGON(({x} {y},{x + size} {y},{x + size} {y + size},{x} {y + size},{x} {y}))"))
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    if selected is not None:
        layer.selectByIds([f.id() for f in layer.getFeatures()][:selected])
    return layer


def run(algorithm_id: str, parameters: dict, feedback=None, context=None):
    import processing

    return processing.run(algorithm_id, parameters, feedback=feedback or RecordingFeedback(),
                          context=context)


def test_provider_lists_every_process(provider, live_server):
    served = {p["id"] for p in live_server.get("processes")["processes"]}
    assert served >= {"echo", "floor-count"}
    listed = {a.id() for a in provider.algorithms()}
    assert listed == {f"cutprocessing:cut_{pid.replace('-', '_')}" for pid in served}
    echo = provider.algorithm("cut_echo")
    assert echo.displayName() == "Echo"
    assert "Returns the message" in echo.shortDescription()
    assert echo.helpUrl().endswith("docs/processes/echo.md")
    floor = provider.algorithm("cut_floor_count")
    kinds = {d.name(): d.type() for d in floor.parameterDefinitions()}
    assert kinds["buildings"] == "source"
    assert kinds["method"] == "enum"
    assert kinds["publish"] == "boolean"
    assert kinds["height_raster"] == "string"
    assert kinds["OUTPUT_buildings"] == "sink"
    pause = echo.parameterDefinition("pause")
    assert (pause.minimum(), pause.maximum()) == (0, 600)
    # Deterministic instances: Model Designer and batch mode rebuild algorithms all the time.
    again = echo.create()
    assert [d.name() for d in again.parameterDefinitions()] == \
        [d.name() for d in echo.parameterDefinitions()]


def test_echo_with_progress(provider, live_server, tmp_path):
    feedback = RecordingFeedback()
    provenance = tmp_path / "provenance.json"
    result = run("cutprocessing:cut_echo",
                 {"message": "Moin Hamburg!", "pause": 1.5, "OUTPUT_provenance": str(provenance)},
                 feedback)
    assert result["OUTPUT_message"] == "Moin Hamburg!"
    assert json.loads(provenance.read_text())["parameters"] == {"message": "Moin Hamburg!",
                                                                "pause": 1.5}
    status = live_server.get(f"jobs/{result['JOB_ID']}")
    assert status["status"] == "successful"
    # The job's progress arrives while it runs (not only 0 and 100), with its messages.
    between = [v for v in feedback.progress_values if 0 < v < 100]
    assert between, feedback.progress_values
    assert feedback.progress_values[-1] == 100
    assert any(i.startswith("waiting: ") for i in feedback.infos), feedback.infos


def test_cancelling_dismisses_the_job(provider, live_server):
    feedback = RecordingFeedback(cancel_at=5)
    started = time.monotonic()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        run("cutprocessing:cut_echo", {"message": "long", "pause": 60}, feedback)
    assert time.monotonic() - started < 30
    job_id = feedback.job_id()
    assert live_server.get(f"jobs/{job_id}")["status"] == "dismissed"


def test_cancelling_from_another_thread(provider, live_server):
    feedback = RecordingFeedback()
    timer = threading.Timer(1.5, feedback.cancel)
    timer.start()
    with pytest.raises(QgsProcessingException):
        run("cutprocessing:cut_echo", {"message": "long", "pause": 60}, feedback)
    assert live_server.get(f"jobs/{feedback.job_id()}")["status"] == "dismissed"


def test_server_error_reaches_feedback(provider):
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException, match="negative measured_height"):
        run("cutprocessing:cut_floor_count",
            {"buildings": buildings_layer(negative=True), "OUTPUT_buildings": "TEMPORARY_OUTPUT"},
            feedback)
    assert any("negative measured_height" in error and fatal
               for error, fatal in feedback.errors), feedback.errors


def test_server_down_gives_clear_message(qgis_app):
    from conftest import free_port
    from cut_processing.algorithm import OgcProcessAlgorithm
    from cut_processing.provider import ProcessesProvider
    from cut_processing.server import Server

    down = Server("down", f"http://127.0.0.1:{free_port()}", timeout=3)
    provider = ProcessesProvider([down], use_cache=False)
    provider.loadAlgorithms()
    assert provider.algorithms() == []
    assert "cannot reach the server" in provider.errors["down"]
    echo = OgcProcessAlgorithm(down, {"id": "echo", "inputs": {
        "message": {"schema": {"type": "string"}}}, "outputs": {}})
    echo.initAlgorithm()
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException, match="cannot reach the server"):
        echo.run({"message": "x"}, QgsProcessingContext(), feedback, catchExceptions=False)
    assert feedback.errors


def test_selected_features_only_are_sent(provider, live_server):
    from cut_processing.geojson import source_to_feature_collection
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProcessingUtils

    layer = buildings_layer(selected=2)
    QgsProject.instance().addMapLayer(layer)
    try:
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        definition = QgsProcessingFeatureSourceDefinition(layer.id(), True)
        source = QgsProcessingUtils.variantToSource(definition, context)
        collection = source_to_feature_collection(source, context)
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    # A selection is a set: QGIS gives no order.
    by_id = {f["id"]: f for f in collection["features"]}
    assert sorted(by_id) == ["t1", "t2"]
    lon, lat = by_id["t1"]["geometry"]["coordinates"][0][0]
    assert 9.9 < lon < 10.0 and 53.5 < lat < 53.6  # reprojected to CRS84
    assert by_id["t1"]["properties"]["storeys"] == 3
    assert by_id["t2"]["properties"]["storeys"] is None


@pytest.mark.skipif(not models_present(), reason="floor-count models missing: "
                    "src/cut_processes/models/floor-count-height.onnx/.card.json not built yet")
def test_floor_count_on_memory_layer(provider, live_server):
    from qgis.core import QgsProcessingUtils
    from qgis.PyQt.QtCore import QVariant

    feedback = RecordingFeedback()
    context = QgsProcessingContext()
    result = run("cutprocessing:cut_floor_count",
                 {"buildings": buildings_layer(), "method": 1,  # height
                  "OUTPUT_buildings": "TEMPORARY_OUTPUT"}, feedback, context)
    layer = result["OUTPUT_buildings"]  # processing.run resolves temporary outputs
    if isinstance(layer, str):
        layer = QgsProcessingUtils.mapLayerFromString(layer, context)
    assert layer.featureCount() == len(SQUARES)
    fields = layer.fields()
    for name in ("id", "storeys_estimated", "confidence", "method", "needs_review",
                 "storeys_range", "explanation"):
        assert fields.indexOf(name) >= 0, fields.names()
    assert fields.field("storeys_estimated").type() in (QVariant.Int, QVariant.LongLong)
    assert fields.field("confidence").type() == QVariant.Double
    assert fields.field("needs_review").type() == QVariant.Bool
    by_id = {f["id"]: f for f in layer.getFeatures()}
    assert by_id["t1"]["storeys_estimated"] >= 1
    assert json.loads(by_id["t1"]["storeys_range"])[0] >= 1
    assert layer.crs().authid() == "EPSG:4326"
    # Three buildings take milliseconds: the job may end before the first poll, so only the
    # final progress is certain here (progress while a job runs: test_echo_with_progress).
    assert feedback.progress_values and feedback.progress_values[-1] == 100


def test_in_a_model_and_in_batch(provider, live_server):
    """A model with two chained echo runs (Model Designer), and a batch of runs."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
    )

    model = QgsProcessingModelAlgorithm("echo twice", "tests")
    first = QgsProcessingModelChildAlgorithm("cutprocessing:cut_echo")
    first.setChildId("first")
    first.addParameterSources("message", [
        QgsProcessingModelChildParameterSource.fromStaticValue("Moin")])
    first.addParameterSources("pause", [
        QgsProcessingModelChildParameterSource.fromStaticValue(0)])
    model.addChildAlgorithm(first)
    second = QgsProcessingModelChildAlgorithm("cutprocessing:cut_echo")
    second.setChildId("second")
    second.addParameterSources("message", [
        QgsProcessingModelChildParameterSource.fromChildOutput("first", "OUTPUT_message")])
    second.addParameterSources("pause", [
        QgsProcessingModelChildParameterSource.fromStaticValue(0)])
    output = QgsProcessingModelOutput("echoed")
    output.setChildOutputName("OUTPUT_message")
    second.setModelOutputs({"echoed": output})
    model.addChildAlgorithm(second)
    context = QgsProcessingContext()
    results, ok = model.run({}, context, RecordingFeedback())
    assert ok
    assert results["second:echoed"] == "Moin"

    # Batch mode runs one independent instance per row.
    for message in ("eins", "zwei", "drei"):
        assert run("cutprocessing:cut_echo", {"message": message})["OUTPUT_message"] == message



def test_published_collection_loads_as_features_layer(qgis_app, live_server):
    """A ``published`` entry becomes an OGC API - Features layer filtered to its job."""
    from cut_processing.outputs import oapif_layer

    href = f"{live_server.url}/collections/buildings/items"
    layer = oapif_layer({"collection": "buildings", "href": href})
    assert layer.isValid()
    assert layer.providerType() == "OAPIF"
    assert layer.featureCount() > 100
    one_job = oapif_layer({"collection": "buildings", "href": f"{href}?job_id=0123456789"})
    assert one_job.subsetString() == "\"job_id\" = '0123456789'"
    assert one_job.name() == "buildings (job 01234567)"


def segments_layer() -> QgsVectorLayer:
    """A straight street of three busy segments and three quiet streets (EPSG:25832)."""
    layer = QgsVectorLayer(
        "LineString?crs=EPSG:25832&field=name:string&field=rides:integer"
        "&field=week_start:string&field=week_end:string", "segments", "memory")
    rows = [("Lindenweg", 560, [(561100, 5933500), (561250, 5933500)]),
            ("Lindenweg", 610, [(561250, 5933500), (561400, 5933500)]),
            ("Lindenweg", 580, [(561400, 5933500), (561550, 5933500)]),
            ("Ahornstieg", 20, [(561250, 5933500), (561250, 5933650)]),
            ("Birkenweg", 15, [(561100, 5933800), (561250, 5933800)]),
            ("Erlenweg", 12, [(561100, 5934000), (561250, 5934000)])]
    features = []
    for name, rides, coords in rows:
        feature = QgsFeature(layer.fields())
        feature.setAttributes([name, rides, "2025-03-10", "2025-03-16"])
        feature.setGeometry(QgsGeometry.fromWkt(
            "LINESTRING(" + ",".join(f"{x} {y}" for x, y in coords) + ")"))
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    return layer


def test_cycling_corridors_from_a_line_layer(provider, live_server):
    from qgis.core import QgsProcessingUtils

    algorithm = provider.algorithm("cut_cycling_volumes")
    kinds = {d.name(): d.type() for d in algorithm.parameterDefinitions()}
    assert kinds["segments"] == "source" and kinds["official_routes"] == "source"
    assert kinds["OUTPUT_corridors"] == "sink" and kinds["OUTPUT_segments"] == "sink"
    context = QgsProcessingContext()
    result = run("cutprocessing:cut_cycling_volumes",
                 {"segments": segments_layer(), "top_n": 2,
                  "OUTPUT_corridors": "TEMPORARY_OUTPUT",
                  "OUTPUT_segments": "TEMPORARY_OUTPUT"}, RecordingFeedback(), context)
    corridors = result["OUTPUT_corridors"]
    if isinstance(corridors, str):
        corridors = QgsProcessingUtils.mapLayerFromString(corridors, context)
    ranked = sorted(corridors.getFeatures(), key=lambda f: f["rank"])
    # the three Lindenweg segments are one corridor, ranked first by ride-km
    assert ranked[0]["rank"] == 1 and ranked[0]["segment_count"] == 3
    assert abs(ranked[0]["length_m"] - 450) < 1
    assert "Lindenweg" in ranked[0]["names"]
    segments = result["OUTPUT_segments"]
    if isinstance(segments, str):
        segments = QgsProcessingUtils.mapLayerFromString(segments, context)
    assert segments.featureCount() == 6
    assert {f["calibration"] for f in segments.getFeatures()} == {"none: relative volume only"}
