"""bin/topology: bring the seed's topology up or down (``make run``/``make stop``).

    up      start supervisord (HAProxy :9100, app :9210, app2 :9211), create
            the tables, load the test users once, wait for GET /probe_status;
            --store crate also runs the CrateDB nodes (--crate-nodes 2 or 3,
            docs/crate.rst)
    down    stop every program and supervisord
    status  what supervisor runs
    render  write supervisord.conf and haproxy.cfg from the etc/ templates
"""
import argparse
import sys

from timpe.paths import ETC, ROOT, SUPERVISORD_CONF, VAR
from timpe.topology.instance import Topology, TopologyError, prepare_store
from timpe.topology.render import Ports, find_haproxy, listeners, parameters, render_configs

PORTS = Ports()
STORES = {"sqlite": ETC / "app.ini", "crate": ETC / "app-crate.ini"}
#: supervisord includes var/supervisor/*.conf: the store's own programs.
STORE_PROGRAMS = VAR / "supervisor" / "crate.conf"
#: The app nodes' ini for a cluster of other than the seed's two nodes.
CRATE_INI = VAR / "etc" / "app-crate.ini"


def _store_programs(store, node_count):
    """Write (crate) or remove (sqlite) the store's supervisor programs;
    return the ini the app nodes use, and where the store's nodes listen."""
    if store != "crate":
        STORE_PROGRAMS.unlink(missing_ok=True)
        return STORES[store], []
    from timpe.topology import crate

    try:
        cluster = crate.nodes(node_count)
        crate.write_programs(STORE_PROGRAMS, cluster, VAR / "crate", VAR / "log" / "crate",
                             user=crate.run_as())
    except crate.CrateSetupError as exc:
        raise TopologyError(str(exc)) from None
    if crate.hosts(cluster) == crate.hosts(crate.nodes()):
        return STORES[store], crate.listeners(cluster)
    return crate.app_ini(CRATE_INI, cluster, ETC / "app.ini"), crate.listeners(cluster)


def _prepare_store(config, timeout):
    """Create the tables and load the test users; a starting cluster gets time."""
    from timpe.cli import db

    created = prepare_store(config, timeout, say=print)
    print(f"created tables: {', '.join(created)}" if created else "all tables exist")
    db.testdata(["--config", str(config)])


def up(args):
    if find_haproxy() is None:
        raise TopologyError("haproxy is not installed: make run installs it (apt-get install haproxy)")
    config, store_listeners = _store_programs(args.store, args.crate_nodes)
    topology = Topology(SUPERVISORD_CONF, VAR, app_config=config,
                        listeners=listeners(parameters(PORTS)) + store_listeners)
    if topology.is_up():
        print("already running; applying any change of supervisord.conf "
              "(to switch the store, make stop first)")
    if args.store == "sqlite":  # nothing to wait for: ready before the nodes start
        _prepare_store(config, 0)
    pids = topology.start()
    if args.store != "sqlite":
        _prepare_store(config, 180)
    url = f"http://localhost:{PORTS.haproxy}"
    topology.wait_http(f"{url}/probe_status")
    topology.wait_routed(url)
    print(f"""
TiMPE is up (supervisord pid {topology.supervisord_pid()}; programs {pids})
  API            {url}            e.g. curl -H "Authorization: Bearer $(bin/api_key show)" {url}/users
  operator key   {VAR}/etc/operator.key (bin/api_key show | rotate)
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
    parser.add_argument("--crate-nodes", type=int, default=2, metavar="N",
                        help="up --store crate: CrateDB nodes, 2 (the seed's) or 3")
    args = parser.parse_args(argv)
    try:
        sys.exit(commands[args.command](args))
    except TopologyError as exc:
        sys.exit(f"error: {exc}")
