"""bin/topology: bring the seed's topology up or down (``make run``/``make stop``).

    up      start supervisord (HAProxy :9100, app :9210, app2 :9211), create
            the tables, load the test users once, wait for GET /probe_status;
            --store crate also runs the two CrateDB nodes (docs/crate.rst)
    down    stop every program and supervisord
    status  what supervisor runs
    render  write supervisord.conf and haproxy.cfg from the etc/ templates
"""
import argparse
import sys
import time

from timpe.paths import ETC, ROOT, SUPERVISORD_CONF, VAR
from timpe.topology.instance import Topology, TopologyError
from timpe.topology.render import Ports, find_haproxy, parameters, render_configs

PORTS = Ports()
STORES = {"sqlite": ETC / "app.ini", "crate": ETC / "app-crate.ini"}
#: supervisord includes var/supervisor/*.conf: the store's own programs.
STORE_PROGRAMS = VAR / "supervisor" / "crate.conf"


def _store_programs(store):
    """Write (crate) or remove (sqlite) the store's supervisor programs."""
    if store != "crate":
        STORE_PROGRAMS.unlink(missing_ok=True)
        return
    from timpe import crate_cluster

    if crate_cluster.find() is None:
        raise TopologyError(crate_cluster.missing())
    crate_cluster.main(["supervisor-conf", "--output", str(STORE_PROGRAMS)])


def _prepare_store(config, timeout):
    """Create the tables and load the test users; a starting cluster gets time."""
    from timpe.cli import db, open_store
    from timpe.errors import StoreUnavailable

    store = open_store(config)
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.sql("SELECT 1")
            break
        except StoreUnavailable as exc:
            if time.monotonic() > deadline:
                raise TopologyError(f"the store did not answer within {timeout}s: {exc}")
            time.sleep(2)
    db.setup(["--config", str(config)])
    db.testdata(["--config", str(config)])


def up(args):
    if find_haproxy() is None:
        raise TopologyError("haproxy is not installed: make run installs it (apt-get install haproxy)")
    config = STORES[args.store]
    topology = Topology(SUPERVISORD_CONF, VAR, app_config=config)
    if topology.is_up():
        print("already running; applying any change of supervisord.conf "
              "(to switch the store, make stop first)")
    _store_programs(args.store)
    if args.store == "sqlite":  # nothing to wait for: ready before the nodes start
        _prepare_store(config, 0)
    pids = topology.start()
    if args.store != "sqlite":
        _prepare_store(config, 180)
    url = f"http://localhost:{PORTS.haproxy}"
    topology.wait_http(f"{url}/probe_status")
    print(f"""
TiMPE is up (supervisord pid {topology.supervisord_pid()}; programs {pids})
  API            {url}            e.g. curl {url}/users
  HAProxy stats  {url}/__haproxy_stats
  app nodes      http://127.0.0.1:{PORTS.app}  http://127.0.0.1:{PORTS.app2}
  store          {args.store}, configured in {config}
  logs           {VAR}/log/
  control        bin/supervisorctl status | bin/crash | make stop""")


def down(args):
    if Topology(SUPERVISORD_CONF, VAR).stop():
        print("stopped supervisord and every program it ran")
    else:
        print("not running")


def status(args):
    topology = Topology(SUPERVISORD_CONF, VAR)
    if not topology.is_up():
        print("not running")
        return 3
    print(topology.supervisorctl("status", check=False).stdout, end="")
    return 0


def render(args):
    for path in render_configs(ROOT, parameters(PORTS)).values():
        print(f"wrote {path}")


def main(argv=None):
    commands = {"up": up, "down": down, "status": status, "render": render}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("command", choices=commands)
    parser.add_argument("--store", choices=STORES, default="sqlite",
                        help="up: the store the app nodes use (default sqlite)")
    args = parser.parse_args(argv)
    try:
        sys.exit(commands[args.command](args))
    except TopologyError as exc:
        sys.exit(f"error: {exc}")
