"""bin/topology: bring the seed's topology up or down (``make run``/``make stop``).

    up      start supervisord (HAProxy :9100, app :9210, app2 :9211), create
            the tables, load the test users once, wait for GET /probe_status
    down    stop every program and supervisord
    status  what supervisor runs
    render  write supervisord.conf and haproxy.cfg from the etc/ templates
"""
import argparse
import sys

from timpe.paths import APP_INI, ROOT, SUPERVISORD_CONF, VAR
from timpe.topology.instance import Topology, TopologyError
from timpe.topology.render import Ports, find_haproxy, parameters, render_configs

PORTS = Ports()


def up(topology):
    if find_haproxy() is None:
        sys.exit("haproxy is not installed: make run installs it (apt-get install haproxy)")
    from timpe.cli import db

    db.setup(["--config", str(APP_INI)])
    db.testdata(["--config", str(APP_INI)])
    pids = topology.start()
    url = f"http://localhost:{PORTS.haproxy}"
    topology.wait_http(f"{url}/probe_status")
    print(f"""
TiMPE is up (supervisord pid {topology.supervisord_pid()}; programs {pids})
  API            {url}            e.g. curl {url}/users
  HAProxy stats  {url}/__haproxy_stats
  app nodes      http://127.0.0.1:{PORTS.app}  http://127.0.0.1:{PORTS.app2}
  store          {APP_INI} (timpe.store)
  logs           {VAR}/log/
  control        bin/supervisorctl status | bin/crash | make stop""")


def down(topology):
    if topology.stop():
        print("stopped supervisord and every program it ran")
    else:
        print("not running")


def status(topology):
    if not topology.is_up():
        print("not running")
        return 3
    print(topology.supervisorctl("status", check=False).stdout, end="")
    return 0


def render(_topology):
    for path in render_configs(ROOT, parameters(PORTS)).values():
        print(f"wrote {path}")


def main(argv=None):
    commands = {"up": up, "down": down, "status": status, "render": render}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("command", choices=commands)
    args = parser.parse_args(argv)
    try:
        sys.exit(commands[args.command](Topology(SUPERVISORD_CONF, VAR)))
    except TopologyError as exc:
        sys.exit(f"error: {exc}")
