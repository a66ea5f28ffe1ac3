"""Topologies the tests start: supervisord, HAProxy and two gunicorn/gevent
nodes from the same templates as `make run`, on free ports in a temporary
directory, on SQLite or on a CrateDB cluster of their own, stopped
afterwards with no process left behind."""
import pytest

from timpe.auth import client
from timpe.cli import open_store
from timpe.topology import crate, private
from timpe.topology.instance import haproxy_stats
from timpe.topology.render import find_haproxy

from tests.e2e.api import Api


class Running:
    def __init__(self, prepared):
        self.home = prepared.home
        self.ports = prepared.ports
        self.supervisor_port = prepared.supervisor_port
        self.topology = prepared.topology
        self.store_name = prepared.store
        self.cluster = prepared.cluster
        self.ini = prepared.ini
        self.url = prepared.url
        self.node_urls = {"app": f"http://127.0.0.1:{self.ports.app}",
                          "app2": f"http://127.0.0.1:{self.ports.app2}"}
        self.operator_key = client.operator_key(self.ini)
        self.api = Api(self.url, key=self.operator_key)

    def store(self, fresh=False):
        """The topology's store; ``fresh``: with every acknowledged write
        visible to searches (CrateDB's show the last refresh)."""
        store = open_store(self.ini)
        if fresh and hasattr(store, "refresh"):
            for name in ("users", "transactions", "user_transactions"):
                store.refresh(name)
        return store

    def served(self, backend=None):
        """Requests each node has answered, from HAProxy's stats: sent
        through ``backend`` (apps, one_node or by_sender:
        timpe.topology.routing), or through any."""
        served = {"app": 0, "app2": 0}
        for row in haproxy_stats(self.url):
            if row["svname"] in served and backend in (None, row["pxname"]):
                served[row["svname"]] += int(row["req_tot"] or 0)
        return served

    @property
    def affinity(self):
        """How HAProxy routes transfers here (timpe.topology.routing)."""
        from timpe.cli import load_settings
        from timpe.topology import routing
        return routing.affinity(load_settings(self.ini))


def skip_without_crate():
    if crate.find() is None:
        pytest.skip("CrateDB is not installed here (CRATE_HOME unset and no crate on PATH): "
                    "the tests on a live CrateDB cluster need a real one, started by the "
                    "session or named by TIMPE_CRATE_HOSTS")


def start(tmp_path_factory, store, crate_nodes=2):
    if find_haproxy() is None:
        pytest.fail("haproxy is not installed: `make test` installs it (apt-get install haproxy)")
    if store == "crate":
        skip_without_crate()
    prepared = private.prepare(
        tmp_path_factory.mktemp(f"topology-{store}"), identifier=f"timpe-e2e-{store}",
        store=store, crate_nodes=crate_nodes,
        # Short intervals so a killed node is noticed and restarted quickly.
        check_inter="300ms", check_fastinter="200ms", connect_timeout="500ms", startsecs=1,
    )
    return private.running(prepared), prepared


