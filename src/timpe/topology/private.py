"""A throw-away topology: the same templates as `make run`, on free ports in
a directory of its own, stopped afterwards with no process left behind.
The end-to-end tests and bin/benchmark use it, so neither touches the
seed's ports or var/. With ``store="crate"`` its supervisord also runs a
CrateDB cluster of its own, on free ports too."""
import contextlib
import os
import random
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from timpe.auth import client, keys
from timpe.paths import APP_INI, BIN
from timpe.topology import crate
from timpe.topology.instance import Topology, TopologyError, prepare_store
from timpe.topology.render import Ports, find_haproxy, listeners, parameters, render_configs


#: The lowest port free_ports hands out: above every port the seed's
#: topology uses (HAProxy, the app nodes, supervisord, CrateDB's 4200s and 4300s).
LOWEST_PORT = 10000
#: Where Linux keeps the range it picks outgoing connections' ports from.
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range():
    """(first, last) port the kernel gives outgoing connections."""
    try:
        first, last = (int(part) for part in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return first, last


def free_ports(count):
    """``count`` distinct ports free on 127.0.0.1 now, outside the range of
    ephemeral ports: a port from that range may be taken by any outgoing
    connection (the cluster's own among them) before the program it is
    for binds it, which a CrateDB node does seconds after it starts. Where
    that range leaves too few, the kernel picks the rest."""
    first, last = ephemeral_range()
    candidates = [port for port in range(LOWEST_PORT, 65536) if not first <= port <= last]
    # From a random place on (not with the random module's shared
    # generator: a test may have seeded it, and two suites side by side
    # would then try the same ports).
    start = random.SystemRandom().randrange(len(candidates)) if candidates else 0
    sockets = []
    try:
        for port in candidates[start:] + candidates[:start]:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use, or kept by a connection closing
                sock.close()
                continue
            sockets.append(sock)
            if len(sockets) == count:
                break
        while len(sockets) < count:
            sockets.append(socket.socket())
            sockets[-1].bind(("127.0.0.1", 0))
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


#: Lines of each CrateDB node's logs that a failure to start quotes.
LOG_TAIL = 20


def log_tails(crate_dir, lines=LOG_TAIL):
    """The last ``lines`` of each log file under ``crate_dir``'s log/ (each
    node's own, and what supervisor caught of its output; not the garbage
    collector's), as text to add to an error; empty where there are none."""
    if crate_dir is None:
        return ""
    tails = []
    for path in sorted((Path(crate_dir) / "log").glob("*/*.log")):
        if path.name.startswith("gc"):  # the JVM's collector: no word on why
            continue
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        if tail:
            tails.append(f"\n--- the last lines of {path}:\n" + "\n".join(tail))
    return "".join(tails)


class Private:
    def __init__(self, home, ports, supervisor_port, ini, cluster=(), crate_dir=None,
                 listeners=()):
        self.home = Path(home)
        self.ports = ports
        self.supervisor_port = supervisor_port
        self.ini = Path(ini)
        self.cluster = list(cluster)  # CrateDB nodes (timpe.topology.crate.Node)
        self.crate_dir = crate_dir    # their data and logs
        self.store = "crate" if self.cluster else "sqlite"
        self.url = f"http://127.0.0.1:{ports.haproxy}"
        self.topology = Topology(self.home / "supervisord.conf", self.home / "var",
                                 app_config=self.ini, listeners=listeners)

    def roots(self):
        """The directories every process it runs names on its command line."""
        return [self.home] + ([self.crate_dir] if self.crate_dir else [])


def prepare(home, identifier="timpe-private", store="sqlite", crate_nodes=2, settings=None,
            **overrides):
    """Render the configs and copy app.ini into ``home``, with ``settings``
    ({name: value}) added to its [app:main]; return a Private.

    The copied app.ini's ``%(here)s/../var`` puts the SQLite file in home/var;
    ``settings`` changes its [app:main] settings.
    CrateDB nodes keep their data in a directory of their own that the user
    they run as can reach (``home`` may be private to this one).
    """
    haproxy = find_haproxy()
    if haproxy is None:
        raise TopologyError("haproxy is not installed (apt-get install haproxy)")
    home = Path(home)
    (home / "etc").mkdir(parents=True, exist_ok=True)
    shutil.copy(APP_INI, home / "etc" / "app.ini")
    if settings:
        add_settings(home / "etc" / "app.ini", settings)
    key_file = client.key_file(home / "etc" / "app.ini")
    if key_file:  # its own operator key, there before any client asks for it
        keys.ensure_operator_key(key_file)
    ini, cluster, crate_dir = home / "etc" / "app.ini", (), None
    if store == "crate":
        ports = free_ports(2 * crate_nodes)
        cluster = crate.nodes(crate_nodes, ports[:crate_nodes], ports[crate_nodes:])
        crate_dir = Path(tempfile.mkdtemp(prefix=f"{identifier}-crate-"))
        crate_dir.chmod(0o755)
        crate.write_programs(home / "var" / "supervisor" / "crate.conf", cluster,
                             crate_dir / "data", crate_dir / "log", user=crate.run_as(),
                             cluster_name=identifier)
        ini = crate.app_ini(home / "etc" / "app-crate.ini", cluster, "app.ini")
    elif store != "sqlite":
        raise TopologyError(f"unknown store {store!r}")
    *app_ports, supervisor_port = free_ports(4)
    ports = Ports(*app_ports)
    params = parameters(ports, bindir=str(BIN), haproxy=haproxy, bind="127.0.0.1",
                        identifier=identifier, supervisor_port=supervisor_port, **overrides)
    render_configs(home, params)
    return Private(home, ports, supervisor_port, ini, cluster, crate_dir,
                   listeners(params) + crate.listeners(cluster))


def add_settings(ini, settings):
    """Set ``settings`` in the [app:main] of ``ini``, in place of a line
    that set one already."""
    lines = Path(ini).read_text().splitlines()
    start = lines.index("[app:main]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    section = {line.split("=", 1)[0].strip(): i for i, line in enumerate(lines[start:end], start)
               if "=" in line and not line.startswith("#")}
    added = []
    for name, value in settings.items():
        if name in section:
            lines[section[name]] = f"{name} = {value}"
        else:
            added.append(f"{name} = {value}")
    lines[end:end] = added
    Path(ini).write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def running(private, timeout=60):
    """Start ``private``'s topology and create the store's tables; on
    leaving, stop it and kill any stray.

    Yields the Private; raises TopologyError on leaving if a stray was found.
    """
    try:
        private.topology.start(timeout=timeout)
        try:
            prepare_store(private.ini, timeout=180 if private.cluster else 0)
        except TopologyError as exc:
            # The cluster's logs go with its directory on leaving: say what they said.
            raise TopologyError(f"{exc}{log_tails(private.crate_dir)}") from exc
        private.topology.wait_http(f"{private.url}/probe_status", timeout=30)
        private.topology.wait_routed(private.url)
        yield private
    finally:
        private.topology.stop()
        strays = [pid for root in private.roots() for pid in processes_under(root)]
        for pid in strays:
            os.kill(pid, signal.SIGKILL)
        if private.crate_dir:
            shutil.rmtree(private.crate_dir, ignore_errors=True)
        if strays:
            raise TopologyError(f"processes left running after stop: {strays}")
