"""GET /probe_store (timpe.store.probe): 200 while the node reaches its
store, a quick 503 in the API's shape when it does not; it writes nothing.
HAProxy's routed backends check it (tests/e2e/test_routing.py)."""
import socket
import time

from timpe import main

from tests.conftest import snapshot
from tests.spec import SpecTestApp, app_settings


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_node_that_reaches_its_store(app, store):
    before = snapshot(store)
    res = app.get("/probe_store")
    assert res.text == "OK" and res.content_type == "text/plain"
    assert snapshot(store) == before


def test_a_node_cut_off_from_its_cluster_answers_503_at_once(db_path):
    # A real CrateDB client, towards ports where nothing listens.
    node = SpecTestApp(main({}, **app_settings(
        db_path, **{"timpe.store": "timpe.store.crate.CrateStore",
                    "crate.hosts": f"127.0.0.1:{unused_port()} 127.0.0.1:{unused_port()}",
                    "crate.timeout": "2", "recovery.enabled": "false"})))
    started = time.monotonic()
    res = node.get("/probe_store", status=503)
    assert time.monotonic() - started < 3  # within HAProxy's 3 s check timeout
    assert res.json["status"] == "failed" and "Server not available" in res.json["msg"]
    assert node.get("/probe_status").text == "OK"  # up, but not for writes
