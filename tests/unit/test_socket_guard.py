"""The suite's own guard: connecting or resolving beyond loopback fails."""

import socket

import pytest

from tests.conftest import NonLoopbackConnection


def test_connect_to_public_address_is_refused() -> None:
    # GIVEN a TCP socket
    # WHEN it connects outside loopback THEN the guard refuses before any packet
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NonLoopbackConnection),
    ):
        sock.connect(("93.184.215.14", 80))


def test_connect_to_private_address_is_refused() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NonLoopbackConnection),
    ):
        sock.connect(("10.0.0.1", 80))


def test_dns_lookup_of_a_public_name_is_refused() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 80)


def test_loopback_lookup_still_works() -> None:
    assert socket.getaddrinfo("127.0.0.1", 80)
