"""The plugin: registers the Processing provider and a settings dialog."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import ProcessesProvider


class ProcessesPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None

    def initProcessing(self):
        provider = ProcessesProvider()
        # The registry owns (and on failure deletes) the provider: keep it only when added.
        self.provider = provider if QgsApplication.processingRegistry().addProvider(provider) \
            else None

    def initGui(self):
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .provider import ICON

        self.action = QAction(QIcon(ICON), "OGC API Processes servers…",
                              self.iface.mainWindow())
        self.action.triggered.connect(self.show_settings)
        self.iface.addPluginToMenu("OGC API Processes", self.action)

    def show_settings(self):
        from .settings_dialog import ServersDialog

        dialog = ServersDialog(self.iface.mainWindow() if self.iface else None)
        if dialog.exec_() and self.provider is not None:
            self.provider.refreshAlgorithms()

    def unload(self):
        if self.action is not None and self.iface is not None:
            self.iface.removePluginMenu("OGC API Processes", self.action)
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
