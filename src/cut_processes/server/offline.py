"""HTML pages that work without internet access: local copies of the browser libraries.

pygeoapi's templates load Leaflet, its plugins and Bootstrap from public CDNs; in a city
intranet (or any closed network) the item maps stay blank. The app serves the vendored copies
in ``server/static/vendor`` under ``/vendor/`` and rewrites the CDN addresses in HTML
responses. Map tiles still come from ``server.map.url`` in the configuration: point it at the
city's own tile server.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_from_directory

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"

#: CDN address prefix -> folder under /vendor/
CDN_PREFIXES: dict[str, str] = {
    "https://unpkg.com/leaflet@1.3.1/dist/": "leaflet/",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet/1.3.1/": "leaflet/",
    "https://unpkg.com/leaflet.markercluster/dist/": "leaflet.markercluster/",
    "https://unpkg.com/leaflet-draw@1.0.4/dist/": "leaflet-draw/",
    "https://unpkg.com/bootstrap@5.1.3/dist/css/": "bootstrap/",
}


def install(app: Flask, base_url: str) -> None:
    """Serve ``/vendor/<path>`` and point HTML pages at it."""
    base = base_url.rstrip("/")
    replacements = [(cdn, f"{base}/vendor/{folder}") for cdn, folder in CDN_PREFIXES.items()]

    @app.get("/vendor/<path:path>")
    def _vendor(path: str) -> Response:
        response = send_from_directory(VENDOR_DIR, path, max_age=7 * 24 * 3600)
        return response

    @app.after_request
    def _local_libraries(response: Response) -> Response:
        content_type = str(response.headers.get("Content-Type", ""))
        if "text/html" not in content_type or response.direct_passthrough:
            return response
        html = response.get_data(as_text=True)
        if "https://" not in html:
            return response
        for cdn, local in replacements:
            html = html.replace(cdn, local)
        response.set_data(html)
        return response
