"""The plugin as QGIS loads it: classFactory, provider registration, the installable zip.

(Named so that it runs before the live tests, which register their own provider.)
"""

from __future__ import annotations

import subprocess
import zipfile

from conftest import ROOT


def test_plugin_registers_and_unloads_provider(qgis_app, tmp_path):
    import cut_processing
    from cut_processing.server import SETTINGS_KEY
    from qgis.core import QgsApplication, QgsSettings

    settings = QgsSettings()
    settings.setValue(SETTINGS_KEY, '[{"name": "nowhere", "url": "http://127.0.0.1:9", '
                                    '"timeout": 2}]')
    try:
        plugin = cut_processing.classFactory(None)
        plugin.initGui()
        registry = QgsApplication.processingRegistry()
        provider = registry.providerById("cutprocessing")
        assert provider is not None
        assert provider.algorithms() == []  # server down: listed nothing, did not crash
        assert "nowhere" in provider.errors
        plugin.unload()
        assert registry.providerById("cutprocessing") is None
    finally:
        settings.remove(SETTINGS_KEY)


def test_settings_round_trip(qgis_app, tmp_path):
    from cut_processing.server import Server, load_servers, save_servers
    from qgis.core import QgsSettings
    from qgis.PyQt.QtCore import QSettings

    settings = QgsSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    assert [s.url for s in load_servers(settings)] == ["http://127.0.0.1:5000"]
    servers = [Server("cut", "https://twin.example.org", "abc1234", "bearer"),
               Server("lab", "http://lab:5000")]
    save_servers(servers, settings)
    assert load_servers(settings) == servers
    # Only the auth config id is stored, no secret.
    assert "abc1234" in settings.value("cut_processing/servers")


def test_bearer_and_api_key_headers_from_auth_manager(qgis_app):
    from cut_processing.client import AuthHeaders
    from qgis.core import QgsApplication, QgsAuthMethodConfig

    manager = QgsApplication.authManager()
    if not manager.masterPasswordIsSet():
        assert manager.setMasterPassword("test-master-password", True)
    config = QgsAuthMethodConfig("Basic")
    config.setName("cut test token")
    config.setConfig("username", "cut")
    config.setConfig("password", "s3cret-token")
    assert manager.storeAuthenticationConfig(config)[0]
    authcfg = config.id()
    try:
        assert AuthHeaders(authcfg, "bearer").headers() == {
            "Authorization": "Bearer s3cret-token"}
        assert AuthHeaders(authcfg, "header:X-API-Key").headers() == {
            "X-API-Key": "s3cret-token"}
        basic = AuthHeaders(authcfg, "auto").headers()
        assert basic.get("Authorization", "").startswith("Basic ")
        assert AuthHeaders("", "bearer").headers() == {}
    finally:
        manager.removeAuthenticationConfig(authcfg)


def test_make_qgis_plugin_builds_zip(tmp_path):
    subprocess.run(["make", "-s", "qgis-plugin", f"DIST={tmp_path}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    with zipfile.ZipFile(tmp_path / "cut_processing.zip") as archive:
        names = archive.namelist()
    assert "cut_processing/metadata.txt" in names
    assert "cut_processing/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_cached_processes_when_server_is_down(qgis_app):
    """Saved models keep opening while a server is unreachable: the last listing is used."""
    import json
    import os

    from conftest import free_port
    from cut_processing.provider import ProcessesProvider, cache_path
    from cut_processing.server import Server

    url = f"http://127.0.0.1:{free_port()}"
    os.makedirs(os.path.dirname(cache_path()), exist_ok=True)
    with open(cache_path(), "w", encoding="utf-8") as fh:
        json.dump({url: [{"id": "echo", "title": "Echo", "outputs": {},
                          "inputs": {"message": {"schema": {"type": "string"}}}}]}, fh)
    try:
        provider = ProcessesProvider([Server("old", url, timeout=2)])
        provider.loadAlgorithms()
        assert [a.name() for a in provider.algorithms()] == ["old_echo"]
        assert "cannot reach the server" in provider.errors["old"]
        # Without a cache the unreachable server lists nothing.
        provider = ProcessesProvider([Server("old", url, timeout=2)], use_cache=False)
        provider.loadAlgorithms()
        assert provider.algorithms() == []
    finally:
        os.remove(cache_path())
