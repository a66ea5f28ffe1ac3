"""The real topology for the end-to-end tests: supervisord, HAProxy and two
gunicorn/gevent nodes from the same templates as `make run`, on free ports
in a temporary directory, stopped afterwards with no process left behind."""
import pytest

from timpe.cli import db, open_store
from timpe.topology import private
from timpe.topology.render import find_haproxy

from tests.e2e.api import Api

# Kept importable from here: other tests use them.
free_ports = private.free_ports
processes_under = private.processes_under


class Running:
    def __init__(self, prepared):
        self.home = prepared.home
        self.ports = prepared.ports
        self.supervisor_port = prepared.supervisor_port
        self.topology = prepared.topology
        self.ini = prepared.ini
        self.url = prepared.url
        self.node_urls = {"app": f"http://127.0.0.1:{self.ports.app}",
                          "app2": f"http://127.0.0.1:{self.ports.app2}"}
        self.api = Api(self.url)

    def store(self):
        return open_store(self.ini)

    def served(self):
        """Requests each node has answered, from HAProxy's stats (CSV)."""
        import requests
        text = requests.get(f"{self.url}/__haproxy_stats;csv", timeout=5).text
        header, *rows = [line.split(",") for line in text.splitlines() if line]
        column = header.index("req_tot")
        return {row[1]: int(row[column] or 0) for row in rows if row[1] in ("app", "app2")}


@pytest.fixture(scope="session")
def topology(tmp_path_factory):
    if find_haproxy() is None:
        pytest.fail("haproxy is not installed: `make test` installs it (apt-get install haproxy)")
    prepared = private.prepare(
        tmp_path_factory.mktemp("topology"), identifier="timpe-e2e",
        # Short intervals so a killed node is noticed and restarted quickly.
        check_inter="300ms", check_fastinter="200ms", connect_timeout="500ms", startsecs=1,
    )
    db.setup(["--config", str(prepared.ini)])
    with private.running(prepared):
        yield Running(prepared)
