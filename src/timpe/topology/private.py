"""A throw-away topology: the same templates as `make run`, on free ports in
a directory of its own, stopped afterwards with no process left behind.
The end-to-end tests and bin/benchmark use it, so neither touches the
seed's ports or var/."""
import contextlib
import os
import shutil
import signal
import socket
from pathlib import Path

from timpe.paths import APP_INI, BIN
from timpe.topology.instance import Topology, TopologyError
from timpe.topology.render import Ports, find_haproxy, parameters, render_configs


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


class Private:
    def __init__(self, home, ports, supervisor_port):
        self.home = Path(home)
        self.ports = ports
        self.supervisor_port = supervisor_port
        self.ini = self.home / "etc" / "app.ini"
        self.url = f"http://127.0.0.1:{ports.haproxy}"
        self.topology = Topology(self.home / "supervisord.conf", self.home / "var",
                                 app_config=self.ini)


def prepare(home, identifier="timpe-private", **overrides):
    """Render the configs and copy app.ini into ``home``; return a Private.

    The copied app.ini's ``%(here)s/../var`` puts the SQLite file in home/var.
    """
    haproxy = find_haproxy()
    if haproxy is None:
        raise TopologyError("haproxy is not installed (apt-get install haproxy)")
    home = Path(home)
    (home / "etc").mkdir(parents=True, exist_ok=True)
    shutil.copy(APP_INI, home / "etc" / "app.ini")
    *app_ports, supervisor_port = free_ports(4)
    ports = Ports(*app_ports)
    render_configs(home, parameters(ports, bindir=str(BIN), haproxy=haproxy, bind="127.0.0.1",
                                    identifier=identifier, supervisor_port=supervisor_port,
                                    **overrides))
    return Private(home, ports, supervisor_port)


@contextlib.contextmanager
def running(private, timeout=60):
    """Start ``private``'s topology; on leaving, stop it and kill any stray.

    Yields the Private; raises TopologyError on leaving if a stray was found.
    """
    try:
        private.topology.start(timeout=timeout)
        private.topology.wait_http(f"{private.url}/probe_status", timeout=30)
        yield private
    finally:
        private.topology.stop()
        strays = processes_under(private.home)
        for pid in strays:
            os.kill(pid, signal.SIGKILL)
        if strays:
            raise TopologyError(f"processes left running after stop: {strays}")
