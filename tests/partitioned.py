"""A CrateDB cluster and two app nodes, each in a network namespace of its
own (tests/netns.py), started by the tests and stopped afterwards with no
process left: what the partition tests cut apart.

CrateDB nodes run as the ordinary user ``crate`` (CrateDB refuses root),
with their HTTP on the member's address and their transport on its
loopback one (tests/netns.py says why). The app nodes are gunicorn with
the gevent worker and the same command line as supervisor's, bound to
their member's address; the tests send them requests directly, each
client to one node.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.e2e.api import Api
from tests.netns import Network
from timpe.auth import client, keys
from timpe.cli import open_store
from timpe.cli.node import gunicorn_argv
from timpe.paths import APP_INI
from timpe.topology import crate
from timpe.topology.instance import prepare_store

HTTP, TRANSPORT, APP = 4200, 4300, 9210
HEAP = "384m"


@dataclass(frozen=True)
class Host:
    host: str  # what crate.app_ini names in crate.hosts


class Partitioned:
    def __init__(self, home, nodes):
        self.home = Path(home)
        self.nodes = [f"c{i + 1}" for i in range(nodes)]
        self.apps = ["a1", "a2"]
        self.net = Network(self.nodes + self.apps)
        self.processes = {}
        self.cluster = self.nodes  # tests.e2e.test_crate_nodes.wait_healthy counts them
        self.data = None
        self.ini = None
        self.operator_key = None

    # -- start and stop ----------------------------------------------------------

    def __enter__(self):
        try:
            self.net.up()
            self._start_cluster()
            self.ini = crate.app_ini(self.home / "etc" / "app-crate.ini",
                                     [Host(f"{self.net.address[n]}:{HTTP}") for n in self.nodes],
                                     "app.ini")
            shutil.copy(APP_INI, self.home / "etc" / "app.ini")
            # Its own operator key, which the tests' clients send.
            self.operator_key = keys.ensure_operator_key(client.key_file(self.ini))
            prepare_store(self.ini, timeout=240)
            for app in self.apps:
                self._start_app(app)
            for app in self.apps:
                self._wait_app(app)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for name in list(self.processes):
            self.stop(name)
        self.net.down()
        if self.data:
            shutil.rmtree(self.data, ignore_errors=True)

    def _start_cluster(self):
        user = crate.run_as()
        self.data = Path(tempfile.mkdtemp(prefix="timpe-partitions-"))
        self.data.chmod(0o755)
        seeds = ",".join(f"{self.net.loopback[n]}:{TRANSPORT}" for n in self.nodes)
        for node in self.nodes:
            for sub in ("data", "logs"):
                (self.data / node / sub).mkdir(parents=True)
                shutil.chown(self.data / node / sub, user)
            self._spawn(node, [
                "setpriv", "--reuid", user, "--regid", user, "--init-groups",
                "env", f"CRATE_HEAP_SIZE={HEAP}", f"CRATE_GC_LOG_DIR={self.data / node / 'logs'}",
                crate.find(), f"-Ccluster.name={self.net.tag}-timpe", f"-Cnode.name={node}",
                f"-Chttp.host={self.net.address[node]}", f"-Chttp.port={HTTP}",
                f"-Ctransport.host={self.net.loopback[node]}",
                f"-Ctransport.tcp.port={TRANSPORT}", "-Cpsql.enabled=false",
                # The tests' own network is as trusted as localhost is by default.
                "-Cauth.host_based.config.1.user=crate",
                f"-Cauth.host_based.config.1.address={self.net.subnet_cidr}",
                "-Cauth.host_based.config.1.method=trust",
                f"-Cdiscovery.seed_hosts={seeds}",
                f"-Ccluster.initial_master_nodes={','.join(self.nodes)}",
                f"-Cpath.data={self.data / node / 'data'}",
                f"-Cpath.logs={self.data / node / 'logs'}",
            ], self.data / node / "logs" / "console.log")

    def _start_app(self, app):
        argv = gunicorn_argv(self.ini, APP, workers=1)
        argv[argv.index("--bind") + 1] = f"{self.net.address[app]}:{APP}"
        argv[0] = str(Path(sys.executable).parent / "gunicorn")
        (self.home / "log").mkdir(exist_ok=True)
        self._spawn(app, argv, self.home / "log" / f"{app}.log")

    def _spawn(self, name, argv, log):
        with open(log, "ab") as out:
            self.processes[name] = subprocess.Popen(
                [*self.net.exec(name), *map(str, argv)], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def _wait_app(self, app, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url(app)}/probe_status", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.processes[app].poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"app node {app} did not start: see {self.home / 'log' / app}.log")

    def stop(self, name, timeout=60):
        process = self.processes.pop(name)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue

    # -- what the tests use ------------------------------------------------------

    def url(self, app):
        return f"http://{self.net.address[app]}:{APP}"

    def api(self, app, timeout=60):
        """A client of ``app`` that sends the operator key."""
        return Api(self.url(app), timeout=timeout, key=self.operator_key)

    def store(self):
        return open_store(self.ini)
