"""The local two-node CrateDB cluster: is CrateDB installed, and its supervisor programs.

CrateDB is found, never installed: no package registry these machines reach
ships it. It counts as installed when CRATE_HOME is set (its bin/crate is
used) or a ``crate`` executable is on PATH.

    python -m timpe.crate_cluster check
        prints the crate executable; exits 1 with what is missing otherwise.
    python -m timpe.crate_cluster supervisor-conf [--root DIR] [--output FILE]
        writes the [program:crate] and [program:crate2] sections for
        supervisord to include; without CrateDB, a file with no program.
"""
import argparse
import os
import shutil
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "etc" / "supervisor" / "crate.conf.in"
CLUSTER_NAME = "timpe"
HEAP = "512m"  # enough for a development cluster; CRATE_HEAP_SIZE overrides

# (node name, HTTP port, transport port): the seed's topology.
NODES = (("crate", 4200, 4300), ("crate2", 4201, 4301))

INSTALL_HINT = """\
Install CrateDB (https://cratedb.com/docs/guide/install/), e.g. unpack the
tarball for your platform from https://cdn.crate.io/downloads/releases/cratedb/,
then either `export CRATE_HOME=/path/to/crate` or put its bin/ on PATH, and
run `make run STORE=crate` again. CrateDB refuses to run as root."""


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


def hosts():
    """The crate.hosts value naming every local node."""
    return " ".join(f"localhost:{http}" for _, http, _ in NODES)


def supervisor_programs(crate, root=ROOT, heap=None):
    """The supervisor sections running the local cluster with ``crate``."""
    var = Path(root) / "var"
    template = Template(TEMPLATE.read_text())
    seeds = ",".join(f"127.0.0.1:{transport}" for _, _, transport in NODES)
    sections = []
    for node, http, transport in NODES:
        sections.append(template.substitute(
            node=node, crate=crate, cluster=CLUSTER_NAME, root=root,
            http_port=http, transport_port=transport, seed_hosts=seeds,
            masters=",".join(name for name, _, _ in NODES),
            data=var / "crate" / node, logs=var / "log" / "crate" / node,
            heap=heap or os.environ.get("CRATE_HEAP_SIZE", HEAP),
        ))
    return "\n".join(sections)


def _write_supervisor_conf(root, output):
    crate = find()
    if crate is None:
        text = "; CrateDB is not installed: no crate programs.\n"
    else:
        for node, _, _ in NODES:  # supervisor opens its log before CrateDB starts
            (Path(root) / "var" / "log" / "crate" / node).mkdir(parents=True, exist_ok=True)
        text = supervisor_programs(crate, root)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m timpe.crate_cluster",
                                     description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="is CrateDB installed, and where")
    conf = commands.add_parser("supervisor-conf", help="supervisor programs of the cluster")
    conf.add_argument("--root", default=str(ROOT), help="the checkout (var/ lives here)")
    conf.add_argument("--output", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.command == "check":
        crate = find()
        if crate is None:
            print(missing(), file=sys.stderr)
            return 1
        print(crate)
        return 0
    _write_supervisor_conf(Path(args.root).resolve(), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
