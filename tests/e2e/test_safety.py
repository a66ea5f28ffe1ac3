"""Safe retries across nodes, the audit of the stored rows, the stats page."""
import http.client
import stat
import threading
import xmlrpc.client
from collections import Counter, defaultdict

import pytest

from tests.e2e.api import Api, join_all, nick, process_all, run_threads
from timpe.audit import audit
from timpe.topology import credentials


def test_duplicate_submissions_through_both_nodes_transfer_once(topology):
    api = topology.api
    payer, payee = api.register(nick("idem"), 1000), api.register(nick("idem"), 0)
    urls = [topology.url, topology.node_urls["app"], topology.node_urls["app2"]]
    barrier = threading.Barrier(6)
    seen = defaultdict(list)
    lock = threading.Lock()

    def submit(index):
        client = Api(urls[index % 3], key=topology.operator_key)
        barrier.wait(10)
        for n in range(15):
            status, body = client.call(
                "POST", "/transactions/immediately" if n % 2 else "/transactions",
                json={"sender": payer, "recipient": payee, "amount": 10},
                headers={"Idempotency-Key": f"{payer}-{n}"})
            with lock:
                seen[n].append((status, body["data"]["id"]))

    join_all(run_threads(6, submit))
    process_all(api)
    for n, answers in seen.items():
        assert len({tid for _, tid in answers}) == 1, answers  # one transaction per key
        assert Counter(status for status, _ in answers)[201] == 1, answers  # one creator
        assert {status for status, _ in answers} <= {200, 201}, answers
    assert api.balance(payer) == 1000 - 15 * 10 and api.balance(payee) == 150
    # Same key, other body: refused on either node.
    for url in urls[1:]:
        status, body = Api(url, key=topology.operator_key).call(
            "POST", "/transactions", json={"sender": payer, "recipient": payee, "amount": 11},
            headers={"Idempotency-Key": f"{payer}-0"})
        assert status == 409 and body["status"] == "failed"


def test_stored_rows_pass_the_audit(topology):
    """Whatever this session put in the store so far adds up, row by row."""
    process_all(topology.api)
    report = audit(topology.store())
    assert report["problems"] == []
    assert report["in_flight"] == 0
    assert report["initial_total"] == report["balance_total"] + report["held_total"]


def test_stats_page_answers_local_operators_only(topology):
    def status_from(source):
        conn = http.client.HTTPConnection("127.0.0.1", topology.ports.haproxy, timeout=5,
                                          source_address=(source, 0))
        try:
            conn.request("GET", "/__haproxy_stats")
            return conn.getresponse().status
        finally:
            conn.close()

    assert status_from("127.0.0.1") == 200
    assert status_from("127.0.0.2") == 403


def test_supervisor_control_port_asks_for_the_login_made_on_first_run(topology):
    secret = credentials.secret_file(topology.home / "var")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    user, password = credentials.credentials(topology.home / "var")
    assert len(password) >= 24
    port = topology.supervisor_port
    for login in ("", f"{user}:wrong@"):  # none, then a wrong password
        proxy = xmlrpc.client.ServerProxy(f"http://{login}127.0.0.1:{port}/RPC2")
        with pytest.raises(xmlrpc.client.ProtocolError) as refused:
            proxy.supervisor.getState()
        assert refused.value.errcode == 401
    operator = xmlrpc.client.ServerProxy(f"http://{user}:{password}@127.0.0.1:{port}/RPC2")
    assert operator.supervisor.getState()["statename"] == "RUNNING"
    # A second run keeps the login it made the first time.
    assert credentials.credentials(topology.home / "var") == (user, password)


def _post_chunked(port, chunks):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/users", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_chunked_bodies_have_the_same_limit(topology):
    """No Content-Length (chunked): the same 64 KiB limit, the same 413 JSON."""
    from timpe.web import MAX_BODY

    for url in topology.node_urls.values():
        port = int(url.rsplit(":", 1)[1])
        chunks = (b" " * 8192 for _ in range(MAX_BODY // 8192 + 2))
        status, body = _post_chunked(port, chunks)
        assert status == 413 and b'"status": "failed"' in body, body
        small = [b'{"nickname": "', nick("chunked").encode(), b'", "balance": 0}']
        status, body = _post_chunked(port, iter(small))
        assert status == 201, body
