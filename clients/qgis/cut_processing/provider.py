"""The Processing provider: one algorithm per process of every configured server."""

from __future__ import annotations

import json
import os
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithm import OgcProcessAlgorithm
from .client import ServerError
from .server import Server, load_servers

LOG_TAG = "OGC API Processes"
ICON = os.path.join(os.path.dirname(__file__), "icon.svg")


def cache_path() -> str:
    """Process descriptions of the last successful listing, so saved models still open while
    a server is unreachable."""
    return os.path.join(QgsApplication.qgisSettingsDirPath(), "cut_processing_cache.json")


class ProcessesProvider(QgsProcessingProvider):
    """``cutprocessing``: OGC API - Processes servers in the Processing toolbox."""

    def __init__(self, servers: list[Server] | None = None, use_cache: bool = True):
        super().__init__()
        self._servers = servers
        self._use_cache = use_cache
        #: Problems of the last listing, per server name (shown in the log).
        self.errors: dict[str, str] = {}

    def id(self) -> str:
        return "cutprocessing"

    def name(self) -> str:
        return "OGC API Processes"

    def longName(self) -> str:
        return "OGC API - Processes servers (Connected Urban Twins)"

    def icon(self):
        return QIcon(ICON)

    def servers(self) -> list[Server]:
        return list(self._servers) if self._servers is not None else load_servers()

    def loadAlgorithms(self):
        self.errors = {}
        cache = self._read_cache()
        for server in self.servers():
            try:
                descriptions = self._describe_all(server)
                cache[server.url] = descriptions
            except ServerError as err:
                self.errors[server.name] = str(err)
                descriptions = cache.get(server.url, [])
                QgsMessageLog.logMessage(
                    f"{server.name}: {err}"
                    + (f"; using the {len(descriptions)} processes listed last time"
                       if descriptions else ""), LOG_TAG, Qgis.Warning)
            for description in descriptions:
                self.addAlgorithm(OgcProcessAlgorithm(server, description))
        self._write_cache(cache)

    @staticmethod
    def _describe_all(server: Server) -> list[dict[str, Any]]:
        client = server.client()
        descriptions = []
        for summary in client.processes():
            if not summary.get("id"):
                continue
            try:
                descriptions.append(client.describe(str(summary["id"])))
            except ServerError as err:
                QgsMessageLog.logMessage(f"{server.name}: process {summary['id']}: {err}",
                                         LOG_TAG, Qgis.Warning)
        return descriptions

    def _read_cache(self) -> dict[str, Any]:
        if not self._use_cache:
            return {}
        try:
            with open(cache_path(), encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_cache(self, cache: dict[str, Any]) -> None:
        if not self._use_cache:
            return
        try:
            os.makedirs(os.path.dirname(cache_path()), exist_ok=True)
            with open(cache_path(), "w", encoding="utf-8") as fh:
                json.dump(cache, fh)
        except OSError:
            pass
