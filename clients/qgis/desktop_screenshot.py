"""A screenshot of the QGIS desktop: the plugin's algorithms in the Processing toolbox and a
floor-count result on the map. Run inside QGIS under a virtual display::

    CUT_URL=http://127.0.0.1:5000 CUT_SHOT=docs/img/qgis-desktop.png \
        xvfb-run -s "-screen 0 1280x800x24" qgis --nologo --noversioncheck \
        --profiles-path /tmp/qgis-shot --code clients/qgis/desktop_screenshot.py

(the plugin must be installed in that profile, e.g. linked into
``/tmp/qgis-shot/profiles/default/python/plugins/``).
"""

import json
import os

import processing
import qgis.utils
from qgis.core import (
    QgsClassificationPrettyBreaks,
    QgsCoordinateReferenceSystem,
    QgsGraduatedSymbolRenderer,
    QgsProject,
    QgsRectangle,
    QgsSettings,
    QgsStyle,
    QgsSymbol,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget

URL = os.environ.get("CUT_URL", "http://127.0.0.1:5000")
SHOT = os.environ.get("CUT_SHOT", "qgis-desktop.png")
BBOX = (9.925, 53.545, 9.932, 53.549)

iface = qgis.utils.iface
QgsSettings().setValue("cut_processing/servers", json.dumps([{"name": "cut", "url": URL}]))
qgis.utils.loadPlugin("cut_processing")
qgis.utils.startPlugin("cut_processing")

window = iface.mainWindow()
window.resize(1280, 800)
buildings = QgsVectorLayer(
    f"url='{URL}' typename='buildings' restrictToRequestBBOX='0'", "buildings", "OAPIF")
subset = processing.run("native:extractbyextent", {
    "INPUT": buildings, "EXTENT": QgsRectangle(*BBOX), "CLIP": False,
    "OUTPUT": "memory:"})["OUTPUT"]
result = processing.run("cutprocessing:cut_floor_count", {
    "buildings": subset, "height_raster": "demo", "method": 1,
    "OUTPUT_buildings": "TEMPORARY_OUTPUT"})["OUTPUT_buildings"]
result.setName("Buildings with storeys (floor-count)")
renderer = QgsGraduatedSymbolRenderer("storeys_estimated")
renderer.setSourceSymbol(QgsSymbol.defaultSymbol(result.geometryType()))
renderer.setClassificationMethod(QgsClassificationPrettyBreaks())
renderer.updateClasses(result, 6)
renderer.updateColorRamp(QgsStyle.defaultStyle().colorRamp("Viridis"))
result.setRenderer(renderer)
QgsProject.instance().addMapLayer(result)
QgsProject.instance().setCrs(QgsCoordinateReferenceSystem("EPSG:25832"))
iface.setActiveLayer(result)

toolbox = window.findChild(QDockWidget, "ProcessingToolbox")
if toolbox is not None:
    toolbox.setVisible(True)
    toolbox.raise_()
    if hasattr(toolbox, "searchBox"):
        toolbox.searchBox.setText("ogcapi")  # a tag of every algorithm of the plugin


def zoom():
    canvas = iface.mapCanvas()
    canvas.setExtent(canvas.mapSettings().layerExtentToOutputExtent(result, result.extent()))
    canvas.refresh()


def shoot():
    window.grab().save(SHOT)
    print(SHOT)
    QApplication.instance().exit(0)


QTimer.singleShot(1500, zoom)
QTimer.singleShot(8000, shoot)
