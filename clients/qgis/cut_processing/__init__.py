"""QGIS plugin: every OGC API - Processes process as a Processing algorithm."""


def classFactory(iface):
    from .plugin import ProcessesPlugin

    return ProcessesPlugin(iface)
