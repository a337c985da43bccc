"""The servers the plugin talks to, kept in QgsSettings (URLs, auth config ids, header mode).

Secrets (API keys, tokens, passwords) live in QGIS's authentication manager; the settings only
hold the id of an authentication configuration.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

SETTINGS_KEY = "cut_processing/servers"
DEFAULT_SERVERS = [{"name": "cut", "url": "http://127.0.0.1:5000"}]


@dataclass
class Server:
    """One OGC API - Processes server.

    ``name`` is short and stable: it prefixes the algorithm ids (``cutprocessing:<name>_<process>``)
    used by saved models and scripts. ``auth_mode``: ``auto`` (QGIS applies the configuration),
    ``bearer`` or ``header:<Name>`` (the password of the configuration is the token / key).
    """

    name: str
    url: str
    authcfg: str = ""
    auth_mode: str = "auto"
    timeout: float = 30.0

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9_]", "_", self.name.lower()) or "server"

    def client(self):
        from .client import AuthHeaders, ProcessesClient

        return ProcessesClient(self.url, AuthHeaders(self.authcfg, self.auth_mode), self.timeout)


def servers_from_json(text: str) -> list[Server]:
    try:
        items = json.loads(text) if text else []
    except ValueError:
        items = []
    servers = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("url"):
            servers.append(Server(
                name=str(item.get("name") or "server"), url=str(item["url"]),
                authcfg=str(item.get("authcfg") or ""),
                auth_mode=str(item.get("auth_mode") or "auto"),
                timeout=float(item.get("timeout") or 30.0)))
    return servers


def servers_to_json(servers: list[Server]) -> str:
    return json.dumps([asdict(s) for s in servers])


def load_servers(settings=None) -> list[Server]:
    """The configured servers (the local development server when none is configured)."""
    if settings is None:
        from qgis.core import QgsSettings

        settings = QgsSettings()
    text = settings.value(SETTINGS_KEY, "")
    if not text:
        return servers_from_json(json.dumps(DEFAULT_SERVERS))
    return servers_from_json(str(text))


def save_servers(servers: list[Server], settings: object | None = None) -> None:
    if settings is None:
        from qgis.core import QgsSettings

        settings = QgsSettings()
    settings.setValue(SETTINGS_KEY, servers_to_json(servers))
