"""HAProxy's own answers are in the API's shape: with no app node up, a
client still gets JSON with "status": "failed", not HAProxy's HTML page.
Its log (var/log/haproxy.log, through supervisord) has a line for each
request that went wrong, and for every request only when asked."""
import time

import requests

from timpe.topology import private
from timpe.topology.instance import haproxy_stats

PROBE = '"GET /probe_status HTTP/1.1"'
TRANSFER = '"POST /transactions HTTP/1.1"'


def log_path(prepared):
    return prepared.home / "var" / "log" / "haproxy.log"


def logged(prepared, wanted, seconds=10, start=0):
    """HAProxy's log from character ``start`` once it has ``wanted``
    (supervisord copies it in as it comes), or as it is after ``seconds``."""
    path = log_path(prepared)
    deadline = time.monotonic() + seconds
    while True:
        text = path.read_text()[start:] if path.exists() else ""
        if wanted in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def probe_then_no_node(prepared):
    """A probe answered, then a transfer with no node up; its answer."""
    with private.running(prepared) as running:
        # Both nodes up: a probe sent to one still starting would be retried
        # on the other, and a redispatch is logged.
        deadline = time.monotonic() + 30
        while not all(row["status"] == "UP" for row in haproxy_stats(prepared.url)
                      if row["svname"] in ("app", "app2")):
            assert time.monotonic() < deadline, haproxy_stats(prepared.url)
            time.sleep(0.2)
        # From here: the topology's own probes while it started, sent
        # before any node was up, were answered 503 and logged as such.
        start = len(log_path(prepared).read_text()) if log_path(prepared).exists() else 0
        assert requests.get(f"{prepared.url}/probe_status", timeout=60).status_code == 200
        running.topology.supervisorctl("stop", "app", "app2")
        answer = requests.post(f"{prepared.url}/transactions", timeout=60,
                               json={"sender": "a", "recipient": "b", "amount": 1})
        return answer, logged(prepared, TRANSFER, start=start)


def test_no_node_up_is_a_json_503_and_only_it_is_logged(tmp_path, monkeypatch):
    monkeypatch.delenv("TIMPE_LOG_REQUESTS", raising=False)
    answer, log = probe_then_no_node(private.prepare(tmp_path, identifier="timpe-haproxy-errors"))
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"status": "failed", "msg": "no app node is available: retry"}
    lines = [line for line in log.splitlines() if TRANSFER in line]
    assert len(lines) == 1 and " 503 " in lines[0], log
    assert PROBE not in log, log


def test_every_request_is_logged_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMPE_LOG_REQUESTS", "all")
    answer, log = probe_then_no_node(private.prepare(tmp_path, identifier="timpe-haproxy-log"))
    assert answer.status_code == 503
    assert PROBE in log and TRANSFER in log, log
