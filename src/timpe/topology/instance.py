"""One running instance of the topology, driven through supervisord.

supervisord is started as a daemon and controlled over its unix socket with
XML-RPC. Stopping waits until supervisord is gone and then makes sure no
process group it ran is left (by the ids it reported), so nothing strays.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import requests
from supervisor.xmlrpc import SupervisorTransport

from timpe.cli import load_settings
from timpe.paths import default_config
from timpe.topology import credentials, routing


class TopologyError(RuntimeError):
    pass


def taken(listeners):
    """The (name, port) of each of ``listeners`` ((name, host, port)) that
    another process listens on, where a server of the topology would fail
    to bind."""
    found = []
    for name, host, port in listeners:
        with socket.socket() as sock:
            # As the servers bind: a closed connection's TIME_WAIT is no obstacle.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                found.append((name, port))
    return found


def answers(url, timeout=2):
    """Whether ``url`` answers 200 now."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def prepare_store(config, timeout=0, say=None):
    """Make the operator key if there is none yet (timpe.auth.keys), wait up
    to ``timeout`` s for the store of ``config`` to answer (a cluster
    starting), create its tables (idempotent), and wait until they can
    serve (a cluster's primary shards active: no request should meet a
    shard that is not there); return the names of the tables it created.
    ``say`` hears how healthy the store is then."""
    from timpe.auth import client, keys
    from timpe.cli import open_store
    from timpe.errors import StoreUnavailable
    from timpe.users import legacy

    key_file = client.key_file(config)
    if key_file:
        keys.ensure_operator_key(key_file)
    store = open_store(config)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                created = legacy.setup(store)[0]
                ready, why = store.serving()
                if ready:
                    if say is not None:
                        say(f"store serving: {why}")
                    return created
            except StoreUnavailable as exc:
                why = str(exc)
            if time.monotonic() > deadline:
                raise TopologyError(f"the store could not serve within {timeout}s: {why}")
            time.sleep(0.5)
    finally:
        store.close()


def _python_env(var, config=None):
    # supervisord runs in a child interpreter that must see our sys.path
    # (a venv or a buildout's eggs alike); its programs inherit TIMPE_CONFIG.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env["TIMPE_CONFIG"] = str(config or default_config())
    env.update(credentials.environment(var))
    return env


def _supervisord_env(var, config=None):
    """What supervisord starts with: its programs' environment, and how
    HAProxy routes the writes of legs for the app's store."""
    env = _python_env(var, config)
    env[routing.ENV] = routing.affinity(load_settings(env["TIMPE_CONFIG"]))
    return env


def _alive(pid, send=os.kill):
    """Does process ``pid`` (with ``send=os.killpg``: process group) exist?"""
    try:
        send(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Topology:
    def __init__(self, conf, var, app_config=None, listeners=()):
        self.conf = Path(conf)
        self.var = Path(var)
        self.app_config = app_config  # the app nodes' ini; None: $TIMPE_CONFIG or etc/app.ini
        self.listeners = list(listeners)  # (name, host, port) its servers bind
        self.socket = self.var / "run" / "supervisor.sock"
        self.pidfile = self.var / "run" / "supervisord.pid"

    # -- supervisord ----------------------------------------------------------

    def rpc(self):
        transport = SupervisorTransport(serverurl=f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def supervisord_pid(self):
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_up(self):
        if self.supervisord_pid() is None:
            return False
        try:
            return self.rpc().getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start(self, timeout=30):
        """Start supervisord (or apply a changed config to the running one)."""
        for sub in ("log", "run"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        if self.is_up():
            self.supervisorctl("update")
            self.rpc().startAllProcesses(True)
        else:
            self.check_listeners()
            subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
                           env=_supervisord_env(self.var, self.app_config), check=True)
            if not _wait(self.is_up, timeout):
                raise TopologyError(f"supervisord did not come up; see {self.var}/log/supervisord.log")
        return self.wait_running(timeout)

    def check_listeners(self):
        """Raise TopologyError naming the ports of its servers that another
        process listens on: said at once, where a server that cannot bind
        would only show as a program that never runs, its reason in its log."""
        busy = taken(self.listeners)
        if busy:
            raise TopologyError("in use by another process: "
                                + ", ".join(f"port {port} ({name})" for name, port in busy)
                                + "; stop what listens there first (ss -ltnp shows it)")

    def supervisorctl(self, *args, check=True):
        return subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
            env=_python_env(self.var, self.app_config), check=check, capture_output=True, text=True)

    # -- processes --------------------------------------------------------------

    def processes(self):
        return {p["name"]: p for p in self.rpc().getAllProcessInfo()}

    def pid(self, name):
        info = self.processes()[name]
        return info["pid"] if info["statename"] == "RUNNING" else None

    def wait_running(self, timeout=30):
        """Wait until every program is RUNNING; return {name: pid}. A
        program gone FATAL (it failed every start supervisord tried) will
        not run: that ends the wait, with the end of its log."""
        def settled():
            states = [p["statename"] for p in self.processes().values()]
            return "FATAL" in states or all(s == "RUNNING" for s in states)
        _wait(settled, timeout, 0.2)
        procs = self.processes()
        states = {n: p["statename"] for n, p in procs.items()}
        if any(state != "RUNNING" for state in states.values()):
            said = "".join(f"\n  {name}: {line}" for name, state in states.items()
                           if state != "RUNNING" for line in self.last_lines(name))
            raise TopologyError(f"programs not running: {states}; see {self.var}/log/{said}")
        return {n: p["pid"] for n, p in procs.items()}

    def last_lines(self, name, count=2, size=2000):
        """The last ``count`` lines ``name`` wrote to its log: most often
        why it stopped."""
        try:
            text = self.rpc().tailProcessStdoutLog(name, 0, size)[0]
        except (OSError, xmlrpc.client.Error):
            return []
        return [line for line in text.splitlines() if line.strip()][-count:]

    def kill_node(self, name):
        """SIGKILL a program's whole process tree (gunicorn master and workers)."""
        pid = self.pid(name)
        if pid is None:
            raise TopologyError(f"{name} is not running")
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        return pid

    # -- stop -----------------------------------------------------------------

    def stop(self, timeout=30):
        """Stop every program and supervisord; leave no process behind."""
        pid = self.supervisord_pid()
        if pid is None:
            return False
        groups = []
        try:
            groups = [p["pid"] for p in self.rpc().getAllProcessInfo() if p["pid"]]
            self.rpc().shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, signal.SIGTERM)
        if not _wait(lambda: not _alive(pid), timeout):
            os.kill(pid, signal.SIGKILL)
            _wait(lambda: not _alive(pid), 5)
        # Each program runs in its own process group led by the pid supervisor
        # reported: whatever is still in one of them is a stray.
        for pgid in groups:
            if _alive(pgid, os.killpg):
                os.killpg(pgid, signal.SIGKILL)
        return True

    # -- HTTP -----------------------------------------------------------------

    @staticmethod
    def wait_http(url, timeout=30):
        if not _wait(lambda: answers(url), timeout, 0.2):
            raise TopologyError(f"{url} did not answer 200 within {timeout}s")

    @staticmethod
    def wait_routed(url, timeout=30):
        """Until HAProxy at ``url`` has a node up in every backend of its
        stats (the routed writes' check their store: timpe.store.probe),
        so that a client that comes right after finds one."""
        def up():
            try:
                rows = haproxy_stats(url)
            except requests.RequestException:
                return False
            return all(r["status"] == "UP" for r in rows if r["svname"] == "BACKEND")
        if not _wait(up, timeout, 0.2):
            raise TopologyError(f"HAProxy at {url} has a backend with no node up "
                                f"after {timeout}s: see {url}/__haproxy_stats")


def haproxy_stats(url):
    """HAProxy's stats page at ``url`` (local clients only): a dict a row,
    by its CSV header (pxname, svname, status, req_tot ...)."""
    text = requests.get(f"{url}/__haproxy_stats;csv", timeout=5).text
    header, *rows = [line.split(",") for line in text.splitlines() if line]
    header[0] = header[0].lstrip("# ")
    return [dict(zip(header, row)) for row in rows]
