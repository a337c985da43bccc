"""The WSGI app: pygeoapi's Flask app plus health, limits, access logging."""

from cut_processes.server.app import create_app

__all__ = ["create_app"]
