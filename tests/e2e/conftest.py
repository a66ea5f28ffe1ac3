"""The real topology for the end-to-end tests: supervisord, HAProxy and two
gunicorn/gevent nodes from the same templates as `make run`, on free ports
in a temporary directory, stopped afterwards with no process left behind."""
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest

from timpe.cli import db, open_store
from timpe.paths import APP_INI, BIN
from timpe.topology.instance import Topology
from timpe.topology.render import Ports, find_haproxy, parameters, render_configs

from tests.e2e.api import Api


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def processes_under(directory):
    """Pids whose command line names ``directory`` (every process we started does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(directory) in cmdline:
                found.append(int(entry.name))
    return found


class Running:
    def __init__(self, home, ports, supervisor_port, topology):
        self.home = home
        self.ports = ports
        self.supervisor_port = supervisor_port
        self.topology = topology
        self.ini = home / "etc" / "app.ini"
        self.url = f"http://127.0.0.1:{ports.haproxy}"
        self.node_urls = {"app": f"http://127.0.0.1:{ports.app}",
                          "app2": f"http://127.0.0.1:{ports.app2}"}
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
    haproxy = find_haproxy()
    if haproxy is None:
        pytest.fail("haproxy is not installed: `make test` installs it (apt-get install haproxy)")
    home = tmp_path_factory.mktemp("topology")
    (home / "etc").mkdir()
    # The same app.ini; its %(here)s/../var puts the SQLite file in home/var.
    shutil.copy(APP_INI, home / "etc" / "app.ini")
    *app_ports, supervisor_port = free_ports(4)
    ports = Ports(*app_ports)
    render_configs(home, parameters(
        ports, bindir=str(BIN), haproxy=haproxy, bind="127.0.0.1", identifier="timpe-e2e",
        supervisor_port=supervisor_port,
        # Short intervals so a killed node is noticed and restarted quickly.
        check_inter="300ms", check_fastinter="200ms", connect_timeout="500ms", startsecs=1,
    ))
    running = Running(home, ports, supervisor_port, Topology(home / "supervisord.conf", home / "var",
                                            app_config=home / "etc" / "app.ini"))
    db.setup(["--config", str(running.ini)])
    try:
        running.topology.start(timeout=60)
        running.topology.wait_http(f"{running.url}/probe_status", timeout=30)
        yield running
    finally:
        running.topology.stop()
        strays = processes_under(home)
        for pid in strays:
            os.kill(pid, signal.SIGKILL)
        assert not strays, f"processes left running after stop: {strays}"
