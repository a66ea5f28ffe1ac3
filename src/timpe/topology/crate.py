"""The local CrateDB cluster: is CrateDB installed, who runs it, and the
supervisor programs of its nodes.

CrateDB is found, never installed: no package registry these machines reach
ships it. It counts as installed when CRATE_HOME is set (its bin/crate is
used) or a ``crate`` executable is on PATH. It refuses to run as root, so
when supervisord runs as root each node runs as an ordinary user
(``CRATE_USER``, default ``crate``, made when missing) that owns the nodes'
data and log directories.

    python -m timpe.topology.crate check
        prints the crate executable and the user it runs as; exits 1 with
        what is missing otherwise.
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from timpe.paths import ETC

TEMPLATE = ETC / "supervisor" / "crate.conf.in"
CLUSTER_NAME = "timpe"
HEAP = "512m"  # enough for a development cluster; CRATE_HEAP_SIZE overrides
USER = "crate"  # CRATE_USER overrides
#: The seed's two nodes; three survive the loss of any one (docs/crate.rst).
NODE_COUNTS = (2, 3)

INSTALL_HINT = """\
Install CrateDB (https://cratedb.com/docs/guide/install/), e.g. unpack the
tarball for your platform from https://cdn.crate.io/downloads/releases/cratedb/,
then either `export CRATE_HOME=/path/to/crate` or put its bin/ on PATH, and
run `make run STORE=crate` again."""


class CrateSetupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Node:
    name: str
    http: int
    transport: int

    @property
    def host(self):
        return f"localhost:{self.http}"


def nodes(count=2, http_ports=None, transport_ports=None):
    """The local cluster's nodes: the seed's ports (4200.., 4300..) unless given."""
    if count not in NODE_COUNTS:
        raise CrateSetupError(f"a local cluster has {' or '.join(map(str, NODE_COUNTS))} "
                              f"nodes, not {count}")
    http_ports = http_ports or [4200 + i for i in range(count)]
    transport_ports = transport_ports or [4300 + i for i in range(count)]
    return [Node("crate" if i == 0 else f"crate{i + 1}", http_ports[i], transport_ports[i])
            for i in range(count)]


def listeners(cluster):
    """Where the nodes of ``cluster`` listen: [(name, host, port)]."""
    return [(f"{node.name} {kind}", "127.0.0.1", port) for node in cluster
            for kind, port in (("HTTP", node.http), ("transport", node.transport))]


def hosts(cluster):
    """The crate.hosts value naming every node of ``cluster``."""
    return " ".join(node.host for node in cluster)


def find(environ=None):
    """The crate executable to run, or None when CrateDB is not installed."""
    env = os.environ if environ is None else environ
    home = env.get("CRATE_HOME")
    if home:
        launcher = Path(home) / "bin" / "crate"
        return str(launcher) if os.access(launcher, os.X_OK) else None
    return shutil.which("crate", path=env.get("PATH", os.defpath))


def missing(environ=None):
    """Why CrateDB counts as not installed, and how to install it."""
    env = os.environ if environ is None else environ
    if env.get("CRATE_HOME"):
        why = f"CRATE_HOME is {env['CRATE_HOME']}, but it has no executable bin/crate."
    else:
        why = "No `crate` executable is on PATH and CRATE_HOME is not set."
    return f"CrateDB is not installed. {why}\n{INSTALL_HINT}"


def run_as(environ=None, euid=None):
    """The user the nodes run as: None when supervisord is not root (they
    run as its user); as root, CRATE_USER (default ``crate``), made as a
    system user without a login when it does not exist."""
    env = os.environ if environ is None else environ
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    name = env.get("CRATE_USER") or USER
    if name == "root":
        raise CrateSetupError("CRATE_USER=root: CrateDB refuses to run as root")
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        pass
    useradd = shutil.which("useradd", path="/usr/sbin:/sbin:/usr/bin:/bin")
    done = (subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
            if useradd else None)
    if done is None or done.returncode != 0:
        why = done.stderr.strip() if done is not None else "useradd is not installed"
        raise CrateSetupError(
            f"CrateDB refuses to run as root, and supervisord runs as root: it needs an "
            f"ordinary user to run as. There is no user {name!r} and none could be made "
            f"({why}). Make one (useradd --system {name}), name another with CRATE_USER, "
            "or run `make run STORE=crate` as an ordinary user.")
    return name


def supervisor_programs(crate, cluster, data, logs, user=None, heap=None,
                        cluster_name=CLUSTER_NAME):
    """The supervisor sections running ``cluster`` with the executable
    ``crate``; node N keeps its data in ``data``/N and its logs in ``logs``/N."""
    template = Template(TEMPLATE.read_text())
    seeds = ",".join(f"127.0.0.1:{node.transport}" for node in cluster)
    masters = ",".join(node.name for node in cluster)
    return "\n".join(template.substitute(
        node=node.name, crate=crate, cluster=cluster_name, root=data,
        http_port=node.http, transport_port=node.transport, seed_hosts=seeds,
        masters=masters, data=Path(data) / node.name, logs=Path(logs) / node.name,
        heap=heap or os.environ.get("CRATE_HEAP_SIZE", HEAP),
        user=f"user = {user}" if user else "; runs as the user of supervisord",
    ) for node in cluster)


def write_programs(output, cluster, data, logs, crate=None, user=None, **kwargs):
    """Write the programs of ``cluster`` to ``output`` and make the nodes'
    directories, owned by the user they run as."""
    crate = crate or find()
    if crate is None:
        raise CrateSetupError(missing())
    if user:
        for directory in (Path(data), Path(logs)):
            _check_reachable(directory, user)
    for node in cluster:
        for directory in (Path(data) / node.name, Path(logs) / node.name):
            directory.mkdir(parents=True, exist_ok=True)
            if user:
                shutil.chown(directory, user)
    for directory in (Path(data), Path(logs)):  # the nodes pass through them
        if user:
            directory.chmod(directory.stat().st_mode | 0o055)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(supervisor_programs(crate, cluster, data, logs, user=user, **kwargs))
    return output


def _check_reachable(directory, user):
    """Refuse a directory that ``user`` could not reach: some existing
    ancestor that is not theirs and not searchable by others."""
    uid = pwd.getpwnam(user).pw_uid
    for ancestor in Path(directory).resolve().parents:
        if ancestor.exists():
            info = ancestor.stat()
            if info.st_uid != uid and not info.st_mode & 0o001:
                raise CrateSetupError(
                    f"CrateDB runs as {user!r}, which cannot reach {directory}: "
                    f"{ancestor} is not searchable by other users (chmod o+x it, "
                    "or keep the checkout elsewhere)")


def app_ini(output, cluster, base_ini):
    """An app ini for ``cluster``: etc/app-crate.ini with every node in
    crate.hosts, based on the ini ``base_ini`` (its etc/app.ini)."""
    text = (ETC / "app-crate.ini").read_text()
    text, used = re.subn(r"(?m)^use = config:.*$", f"use = config:{base_ini}#main", text)
    text, listed = re.subn(r"(?m)^crate\.hosts = .*$", f"crate.hosts = {hosts(cluster)}", text)
    assert used == listed == 1, "etc/app-crate.ini lost its use or crate.hosts line"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"# Written by bin/topology for a cluster of {len(cluster)} nodes.\n" + text)
    return output


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["check"]:
        print(__doc__.split("\n\n")[-1].strip(), file=sys.stderr)
        return 2
    crate = find()
    if crate is None:
        print(missing(), file=sys.stderr)
        return 1
    try:
        user = run_as()
    except CrateSetupError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(crate)
    print(f"runs as {user or pwd.getpwuid(os.geteuid()).pw_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
