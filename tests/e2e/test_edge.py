"""The edge, through the real HAProxy: local-only paths in every spelling,
rate limits per client address and per key (429, Retry-After, the API's
JSON), and the operator key rotated by bin/api_key. 127.0.0.2 and up are
other clients: loopback addresses that are not local to HAProxy's rules."""
import http.client
import threading
import time

import pytest

from tests.e2e.api import Api, nick
from tests.e2e.test_operator_commands import bin_
from tests.topologies import Running
from timpe.auth import client, identity
from timpe.topology import private

PER_ADDRESS, PER_KEY = 40, 20


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    prepared = private.prepare(tmp_path_factory.mktemp("edge"), identifier="timpe-e2e-edge",
                               rate_per_address=PER_ADDRESS, rate_per_key=PER_KEY)
    with private.running(prepared):
        yield Running(prepared)


def send(running, path, source="127.0.0.2", key=None, method="GET", conn=None):
    """(status, headers, body) of one raw request from ``source``: the path
    goes out exactly as written (no client normalises it)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", running.ports.haproxy, timeout=30,
                                          source_address=(source, 0))
    try:
        conn.request(method, path, headers=client.headers(key))
        answer = conn.getresponse()
        return answer.status, answer.headers, answer.read().decode("utf-8", "replace")
    finally:
        if own:
            conn.close()


SPELLINGS = [
    "/metrics", "/%6Detrics", "/%6detrics", "//metrics", "/./metrics", "/x/../metrics",
    "/%2e/metrics", "/x/%2E%2E/metrics", "/../metrics", "/METRICS", "/Metrics", "/metrics?x=1",
    "/x%2F..%2Fmetrics", "/metrics/", "/__haproxy_stats", "/%5F_haproxy_stats",
    "/__haproxy_stats;csv", "//__haproxy_stats", "/./__haproxy_stats;csv",
    "/__haproxy_stats/metrics", "/x/../__haproxy_stats/metrics", "/__HAPROXY_STATS/metrics",
]


@pytest.mark.parametrize("path", SPELLINGS)
def test_local_only_paths_in_every_spelling(edge, path):
    status, headers, body = send(edge, path)
    assert status in (400, 403, 404), (status, body[:200])
    assert "# HELP timpe_" not in body and "haproxy_process" not in body \
        and "Statistics Report" not in body and "pxname" not in body
    if status == 403:
        assert headers["Content-Type"] == "application/json" and '"failed"' in body


def test_the_spellings_do_reach_the_metrics_from_a_local_client(edge):
    """The control: what the other client is refused, a local one gets."""
    for path in ("/%6Detrics", "/x/../metrics", "//metrics"):
        status, _, body = send(edge, path, source="127.0.0.1")
        assert status == 200 and "# HELP timpe_" in body, (path, status)
    status, _, body = send(edge, "/./__haproxy_stats/metrics", source="127.0.0.1")
    assert status == 200 and "haproxy_process" in body


def _flood(running, source, key, stop, answers, path="/users"):
    conn = http.client.HTTPConnection("127.0.0.1", running.ports.haproxy, timeout=30,
                                      source_address=(source, 0))
    while not stop.is_set():
        answers.append(send(running, path, key=key, conn=conn))
    conn.close()


def _served_meanwhile(running, source, key, path="/users"):
    answers = []
    for _ in range(10):  # 10 a second: well within both limits
        answers.append(send(running, path, source=source, key=key)[0])
        time.sleep(0.1)
    return answers


def _limited(answers, what):
    refused = [a for a in answers if a[0] == 429]
    assert refused, f"no 429 among {len(answers)} answers"
    status, headers, body = refused[0]
    assert headers["Retry-After"] == "1" and headers["Content-Type"] == "application/json"
    assert body == f'{{"status": "failed", "msg": "too many requests {what}: retry after 1 s"}}'
    assert {a[0] for a in answers} <= {200, 429}


def test_a_flood_from_one_address_is_429_while_another_is_served(edge):
    _, key = edge.api.register(nick("flood"), 0, key=True)
    _, calm = edge.api.register(nick("calm"), 0, key=True)
    stop, answers = threading.Event(), []
    flood = threading.Thread(target=_flood, args=(edge, "127.0.0.2", None, stop, answers,
                                                  "/probe_status"))
    flood.start()
    try:
        time.sleep(0.5)
        meanwhile = _served_meanwhile(edge, "127.0.0.3", calm)
    finally:
        stop.set()
        flood.join(30)
    _limited(answers, "from this address")
    assert meanwhile == [200] * 10
    time.sleep(1.5)  # over the window: the flooder is served again
    assert send(edge, "/users", source="127.0.0.2", key=key)[0] == 200


def test_a_flood_with_one_key_is_429_from_any_address_while_another_key_is_served(edge):
    _, key = edge.api.register(nick("keyflood"), 0, key=True)
    _, calm = edge.api.register(nick("keycalm"), 0, key=True)
    stop, answers = threading.Event(), []
    flood = threading.Thread(target=_flood, args=(edge, "127.0.0.4", key, stop, answers))
    flood.start()
    try:
        time.sleep(0.5)
        # The same key from a fresh address is over its limit too.
        elsewhere = send(edge, "/users", source="127.0.0.5", key=key)
        meanwhile = _served_meanwhile(edge, "127.0.0.6", calm)
    finally:
        stop.set()
        flood.join(30)
    _limited(answers, "with this key")
    assert elsewhere[0] == 429 and "with this key" in elsewhere[2]
    assert meanwhile == [200] * 10


def test_local_clients_are_not_limited(edge):
    conn = http.client.HTTPConnection("127.0.0.1", edge.ports.haproxy, timeout=30)
    statuses = {send(edge, "/probe_status", conn=conn)[0] for _ in range(3 * PER_ADDRESS)}
    conn.close()
    assert statuses == {200}


def test_bin_api_key_rotates_the_operator_key(edge):
    old = edge.operator_key
    rotated = bin_("api_key", "rotate", "--config", str(edge.ini))
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("timpe_operator_") and new != old
    time.sleep(identity.TTL + 0.1)
    for url in edge.node_urls.values():
        assert Api(url, key=old).call("POST", "/process")[0] == 401
        assert Api(url, key=new).call("POST", "/process")[0] == 200
    assert client.operator_key(edge.ini) == new


def test_a_uri_too_long_for_the_nodes_is_the_apis_414(edge):
    # gunicorn refuses a request line over 4,094 bytes with a page of its
    # own; HAProxy answers first, with the API's JSON.
    key = client.operator_key(edge.ini)
    status, headers, body = send(edge, "/users?after=" + "a" * 5000, source="127.0.0.1", key=key)
    assert status == 414 and headers["Content-Type"] == "application/json"
    assert '"status": "failed"' in body
    # Just under the limit, the node answers.
    status, _, body = send(edge, "/users?limit=1&x=" + "a" * 3900, source="127.0.0.1", key=key)
    assert status != 414 and status < 500, (status, body[:200])
