"""Screenshots for the docs: the Processing toolbox with the plugin's algorithms, the
algorithm's parameter panel, and a result layer rendered on a map.

Run with QGIS's Python against a running server (``make serve``)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 clients/qgis/screenshots.py \
        --url http://127.0.0.1:5000 --out docs/img

The floor-count result needs the floor-count models on the server; without them the map
shows the input buildings (loaded through OGC API - Features) and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), "/usr/share/qgis/python/plugins"]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A bbox in the demo district (CRS84) with a few dozen buildings.
BBOX = (9.925, 53.545, 9.932, 53.549)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from qgis.core import QgsApplication

    app = QgsApplication([], True)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from cut_processing.provider import ProcessesProvider
    from cut_processing.server import Server

    provider = ProcessesProvider([Server("cut", args.url)], use_cache=False)
    QgsApplication.processingRegistry().addProvider(provider)
    if provider.errors:
        print(provider.errors)
        return 1
    toolbox(out / "qgis-toolbox.png", args.url)
    parameters(out / "qgis-floor-count-dialog.png")
    servers_dialog(out / "qgis-servers-dialog.png")
    result_map(args.url, out / "qgis-floor-count-result.png")
    return 0


def toolbox(path: Path, url: str) -> None:
    """The toolbox tree as QGIS draws it, on a registry holding only the plugin's provider."""
    from cut_processing.provider import ProcessesProvider
    from cut_processing.server import Server
    from qgis.core import QgsProcessingRegistry
    from qgis.gui import QgsProcessingToolboxTreeView
    from qgis.PyQt.QtCore import QSize

    registry = QgsProcessingRegistry()
    registry.addProvider(ProcessesProvider([Server("cut", url)], use_cache=False))
    view = QgsProcessingToolboxTreeView(None, registry)
    view.setHeaderHidden(True)
    view.expandAll()
    view.resize(QSize(360, 110))
    view.grab().save(str(path))
    print(path)


def parameters(path: Path) -> None:
    """The parameter panel of floor-count, built from the same widget wrappers as the dialog."""
    from qgis.core import QgsApplication, QgsProcessingContext
    from qgis.gui import QgsGui, QgsProcessingGui, QgsProcessingParameterWidgetContext
    from qgis.PyQt.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(
        "cutprocessing:cut_floor_count")
    panel = QWidget()
    layout = QVBoxLayout(panel)
    title = QLabel(f"<b>{algorithm.displayName()}</b> — {algorithm.id()}")
    layout.addWidget(title)
    form = QFormLayout()
    layout.addLayout(form)
    context = QgsProcessingContext()
    widget_context = QgsProcessingParameterWidgetContext()
    keep = []
    for definition in algorithm.parameterDefinitions():
        wrapper = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(
            definition, QgsProcessingGui.Standard)
        if wrapper is None:
            continue
        wrapper.setWidgetContext(widget_context)
        widget = wrapper.createWrappedWidget(context)
        label = wrapper.createWrappedLabel()
        form.addRow(label if label is not None else QLabel(definition.description()), widget)
        keep.append(wrapper)
    panel.resize(560, panel.sizeHint().height())
    panel.grab().save(str(path))
    print(path)


def servers_dialog(path: Path) -> None:
    """The plugin's settings dialog (the servers of the current QGIS profile)."""
    from cut_processing.settings_dialog import ServersDialog

    dialog = ServersDialog()
    dialog.resize(520, 420)
    dialog.grab().save(str(path))
    print(path)


def result_map(url: str, path: Path) -> None:
    import processing
    from qgis.core import (
        QgsClassificationEqualInterval,
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsGraduatedSymbolRenderer,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsProcessingContext,
        QgsProcessingException,
        QgsProcessingFeedback,
        QgsProcessingUtils,
        QgsProject,
        QgsRectangle,
        QgsStyle,
        QgsSymbol,
        QgsVectorLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor, QFont, QPainter

    buildings = QgsVectorLayer(
        f"url='{url}' typename='buildings' restrictToRequestBBOX='0'", "buildings", "OAPIF")
    extent = QgsRectangle(*BBOX)
    buildings.setSubsetString("")
    context = QgsProcessingContext()
    feedback = QgsProcessingFeedback()
    layer = buildings
    caption = "input buildings via OGC API - Features (floor-count did not run)"
    try:
        subset = processing.run("native:extractbyextent", {
            "INPUT": buildings, "EXTENT": extent, "CLIP": False, "OUTPUT": "memory:"},
            context=context, feedback=feedback)["OUTPUT"]
        result = processing.run("cutprocessing:cut_floor_count", {
            "buildings": subset, "height_raster": "demo", "method": 1,  # height model
            "OUTPUT_buildings": "TEMPORARY_OUTPUT"}, context=context, feedback=feedback)
        layer = result["OUTPUT_buildings"]
        if isinstance(layer, str):
            layer = QgsProcessingUtils.mapLayerFromString(layer, context)
        caption = "floor-count result (QGIS Processing): storeys_estimated, demo district"
        renderer = QgsGraduatedSymbolRenderer("storeys_estimated")
        renderer.setSourceSymbol(QgsSymbol.defaultSymbol(layer.geometryType()))
        renderer.setClassificationMethod(QgsClassificationEqualInterval())
        renderer.updateClasses(layer, 6)
        renderer.updateColorRamp(QgsStyle.defaultStyle().colorRamp("Viridis"))
        layer.setRenderer(renderer)
    except QgsProcessingException as err:
        print(f"floor-count did not run ({err}); rendering the input buildings")
    settings = QgsMapSettings()
    settings.setLayers([layer])
    # Metric CRS of the district, so that buildings are not stretched as in lon/lat.
    utm = QgsCoordinateReferenceSystem("EPSG:25832")
    settings.setDestinationCrs(utm)
    to_utm = QgsCoordinateTransform(layer.crs(), utm, QgsProject.instance())
    settings.setExtent(to_utm.transformBoundingBox(extent))
    settings.setOutputSize(QSize(800, 520))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    painter = QPainter(image)
    painter.setPen(QColor("black"))
    painter.setFont(QFont("Sans", 11))
    painter.fillRect(0, 0, image.width(), 24, QColor(255, 255, 255, 220))
    painter.drawText(8, 17, caption)
    renderer = layer.renderer()
    if isinstance(renderer, QgsGraduatedSymbolRenderer):  # legend: storeys per colour
        ranges = renderer.ranges()
        top = image.height() - 22 * len(ranges) - 12
        painter.fillRect(image.width() - 150, top - 6, 146, 22 * len(ranges) + 14,
                         QColor(255, 255, 255, 230))
        for i, item in enumerate(ranges):
            y = top + 22 * i
            painter.fillRect(image.width() - 140, y, 18, 14, item.symbol().color())
            label = f"{item.lowerValue():.0f} – {item.upperValue():.0f} storeys"
            painter.drawText(image.width() - 114, y + 12, label)
    painter.end()
    image.save(str(path))
    print(path, caption)


if __name__ == "__main__":
    sys.exit(main())
