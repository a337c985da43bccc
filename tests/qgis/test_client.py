"""The HTTP client's failure messages: OGC exception bodies, a server that is down or slow."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import free_port
from cut_processing.client import ProcessesClient, ServerError, exception_message


def test_exception_message_uses_detail():
    body = {"type": "x", "title": "Bad Request", "status": 400,
            "detail": "input 'message': is required"}
    assert exception_message(400, body) == "Bad Request (400): input 'message': is required"
    assert exception_message(502, None, "<html>proxy</html>") == "HTTP 502: <html>proxy</html>"


def test_server_down():
    client = ProcessesClient(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(ServerError, match="cannot reach the server") as err:
        client.processes()
    assert err.value.status is None


def test_slow_server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    client = ProcessesClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5)
    try:
        with pytest.raises(ServerError, match=r"did not answer GET .* within 0.5 s"):
            client.processes()
    finally:
        for conn, _ in accepted:
            conn.close()
        listener.close()


def test_ogc_exception_from_live_server(live_server):
    client = ProcessesClient(live_server.url)
    with pytest.raises(ServerError) as err:
        client.submit("echo", {"pause": 1})
    assert err.value.status == 400
    assert "input 'message': is required" in str(err.value)
    with pytest.raises(ServerError, match=r"no-such-process|not found|Not Found"):
        client.describe("no-such-process")
