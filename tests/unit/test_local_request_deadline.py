"""The local API's request read deadline (oms_webhooks_local.api_server.QuietRequestHandler).

A real werkzeug server on 127.0.0.1 with the local stack's request handler and
a small WSGI app; raw sockets play the slow clients.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from oms_webhooks_local.api_server import QuietRequestHandler, request_read_seconds
from oms_webhooks_local.stack import LocalStack, StackError

#: The deadline under test, in seconds (a setting; short to keep the test fast).
READ_SECONDS = 1.0


def _echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[BaseWSGIServer]:
    monkeypatch.setenv("OMS_WEBHOOKS_LOCAL_API_READ_SECONDS", str(READ_SECONDS))
    served = make_server("127.0.0.1", 0, _echo, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield served
    served.shutdown()
    served.server_close()
    thread.join(10)


def _closed_within(sock: socket.socket, seconds: float, drip: bytes | None) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` while it sends ``drip`` every 0.2 s."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if drip:
                sock.sendall(drip)
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed too
            return True
    return False


def test_a_whole_request_in_time_is_answered(server: BaseWSGIServer) -> None:
    port = server.server_address[1]
    answer = requests.post(f"http://127.0.0.1:{port}/x", data=b"hello", timeout=10)
    assert answer.status_code == 200 and answer.content == b"hello"


def test_a_client_dripping_its_headers_is_cut_off_at_the_deadline(server: BaseWSGIServer) -> None:
    # GIVEN a client that sends a request line, then one header byte every 0.2 s
    with socket.create_connection(server.server_address[:2]) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        # THEN the server closes it (each read was quick; the whole request was not)
        assert _closed_within(sock, 30 * READ_SECONDS, drip=b"x")


def test_a_silent_client_and_a_missing_body_are_cut_off(server: BaseWSGIServer) -> None:
    with socket.create_connection(server.server_address[:2]) as silent:
        assert _closed_within(silent, 30 * READ_SECONDS, drip=None)
    with socket.create_connection(server.server_address[:2]) as short:
        short.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        assert _closed_within(short, 30 * READ_SECONDS, drip=None)


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_read_deadline_stops_the_stack_at_start(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read at each connection, it once failed every request of a stack that had started.
    monkeypatch.setenv("OMS_WEBHOOKS_LOCAL_API_READ_SECONDS", raw)
    with pytest.raises(StackError, match="OMS_WEBHOOKS_LOCAL_API_READ_SECONDS must be a number"):
        LocalStack(api_port=0, aws_port=0).start()


def test_the_read_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_WEBHOOKS_LOCAL_API_READ_SECONDS", " 2.5 ")
    assert request_read_seconds() == 2.5
    monkeypatch.delenv("OMS_WEBHOOKS_LOCAL_API_READ_SECONDS")
    assert request_read_seconds() == 10.0
