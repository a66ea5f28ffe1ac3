"""A small client of the API for the end-to-end tests."""
import threading
import time
import uuid
from decimal import Decimal

import requests

from timpe.auth import client
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.protocol import PHASE2


def nick(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


#: Seconds a kept-alive connection is reused after its last request: less
#: than HAProxy's idle keep-alive timeout (its http-request timeout, 10 s),
#: past which a request sent as HAProxy closes the connection gets no answer.
IDLE = 5


class Api:
    def __init__(self, url, timeout=30, key=None):
        """``key``: the API key every request sends (the tests use the
        operator's: tests.topologies)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.key = key
        self._local = threading.local()  # one Session per thread

    @property
    def session(self):
        local, now = self._local, time.monotonic()
        if not hasattr(local, "session"):
            local.session = client.authenticate(requests.Session(), self.key)
        elif now - local.used > IDLE:
            local.session.close()  # its connections; the next request opens one
        local.used = now
        return local.session

    def call(self, method, path, **kwargs):
        response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        try:
            return response.status_code, response.json(parse_float=Decimal)
        except ValueError:  # not JSON (a proxy's page): the status says what it was
            return response.status_code, {"text": response.text}

    def register(self, nickname, balance, key=False):
        """The new user's id; with ``key``, (id, her API key)."""
        status, body = self.call("POST", "/users", json={"nickname": nickname, "balance": balance})
        assert status == 201, body
        return (body["data"]["id"], body["data"]["key"]) if key else body["data"]["id"]

    def balance(self, uid):
        status, body = self.call("GET", f"/users/{uid}")
        assert status == 200, body
        return body["data"]["balance"]

    def transfer(self, sender, recipient, amount, immediately=False):
        path = "/transactions/immediately" if immediately else "/transactions"
        return self.call("POST", path, json={"sender": sender, "recipient": recipient,
                                             "amount": amount})

    def hold(self, sender, recipient, amount, **extra):
        return self.call("POST", "/transactions", json={
            "sender": sender, "recipient": recipient, "amount": amount, "hold": True, **extra})

    def post(self, txn_id, amount=None):
        return self.call("POST", f"/transactions/{txn_id}/post",
                         json={} if amount is None else {"amount": amount})

    def void(self, txn_id):
        return self.call("POST", f"/transactions/{txn_id}/void")

    def user(self, uid):
        status, body = self.call("GET", f"/users/{uid}")
        assert status == 200, body
        return body["data"]

    def process(self):
        status, body = self.call("POST", "/process")
        assert status == 200, body
        return body

    def state(self, txn_id):
        status, body = self.call("GET", f"/transactions/{txn_id}")
        assert status == 200, body
        return body["data"]["state"]


def process_all(api, rounds=5):
    """POST /process until a round finds nothing left to do."""
    for _ in range(rounds):
        if api.process()["processed"] == 0:
            return
    raise AssertionError(f"still processing after {rounds} rounds")


def run_threads(count, target, *args):
    threads = [threading.Thread(target=target, args=(i, *args), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def join_all(threads, timeout=60):
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "load threads did not stop"


#: Seconds past the grace period by which what a kill cut must have
#: settled: passes every second or so, on CrateDB a refresh of its
#: searches, and a node restarted meanwhile.
SLACK = 8


def kill_under_load(running, stop, threads, node="app"):
    """SIGKILL ``node`` of ``running`` while ``threads`` load it; once
    supervisord has it serving again, stop the load (``stop``, an Event).
    Return when it was killed (time.monotonic())."""
    old = running.topology.kill_node(node)
    killed = time.monotonic()
    deadline = killed + 30
    while time.monotonic() < deadline and running.topology.pid(node) in (None, old):
        time.sleep(0.1)
    running.topology.wait_http(f"{running.node_urls[node]}/probe_status")
    time.sleep(1)
    stop.set()
    join_all(threads)
    return killed


def emptied(pending, deadline):
    """When ``pending()`` (a search) first came back empty (time.monotonic()),
    or None if it did not before ``deadline``."""
    while time.monotonic() < deadline:
        if not pending():
            return time.monotonic()
        time.sleep(0.5)
    return None


def in_phase_2(store):
    """Transfers the nodes still have to drive on (a hold rests ``held``,
    outside phase 2)."""
    return store.scan(TRANSACTIONS.name, where={"state": list(PHASE2)})
