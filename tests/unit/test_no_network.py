"""The offline guard itself: a test that reaches for the network fails loudly."""

import socket

import pytest

from tests.conftest import NetworkBlocked


def test_python_sockets_are_blocked():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("93.184.216.34", 443), timeout=1)


def test_libcurl_is_blocked():
    from curl_cffi import requests

    with pytest.raises(NetworkBlocked):
        requests.get("https://query1.finance.yahoo.com/v1/test/getcrumb", timeout=1)


def test_loopback_stays_open():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket()
    client.connect(server.getsockname())
    client.close()
    server.close()
