"""Render etc/supervisord.conf.in and etc/haproxy.cfg.in.

The templates are the only copy of the topology's configuration. Rendered
with the seed's defaults they give the top-level supervisord.conf and
haproxy.cfg (paths relative to supervisor's ``%(here)s``); the end-to-end
tests render them with free ports into a temporary directory.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template

from timpe.paths import ETC

TEMPLATES = {"supervisord.conf": "supervisord.conf.in", "haproxy.cfg": "haproxy.cfg.in"}

#: gunicorn workers per app node; chosen by measurement (README, "Workers").
WORKERS = 1


@dataclass(frozen=True)
class Ports:
    haproxy: int = 9100
    app: int = 9210
    app2: int = 9211


def find_haproxy():
    # Debian installs it in /usr/sbin, which a normal user's PATH may lack.
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def parameters(ports=Ports(), **overrides):
    """Every template parameter: the defaults give the committed files."""
    params = {
        "root": "%(here)s",                 # supervisord's working directory
        "var": "%(here)s/var",              # sockets, pid file, logs
        "bindir": "%(here)s/bin",           # bin/app starts one node
        # The app nodes' ini comes from supervisord's environment (bin/topology
        # and bin/supervisord default it to etc/app.ini; STORE=crate switches).
        "app_ini": "%(ENV_TIMPE_CONFIG)s",
        "haproxy_cfg": "%(here)s/haproxy.cfg",
        "haproxy": "/usr/sbin/haproxy",
        "bind": "*",                        # HAProxy is the one public listener
        "workers": WORKERS,
        "identifier": "timpe",
        "check_inter": "2s",
        "check_fastinter": "500ms",
        "connect_timeout": "2s",
        "startsecs": 2,
        "haproxy_port": ports.haproxy,
        "app_port": ports.app,
        "app2_port": ports.app2,
        "app_host": "127.0.0.1",            # where HAProxy finds each app node
        "app2_host": "127.0.0.1",
        "supervisor_port": 9001,            # 127.0.0.1 only, with a password
        # Requests a second a client address, and a key, may send through
        # HAProxy (local clients are not limited); then 429.
        "rate_per_address": 200,
        "rate_per_key": 100,
    }
    unknown = set(overrides) - set(params)
    if unknown:
        raise TypeError(f"unknown template parameters: {sorted(unknown)}")
    params.update(overrides)
    return params


def listeners(params):
    """Where the servers of a topology rendered with ``params`` listen:
    [(name, host, port)]."""
    host = "0.0.0.0" if params["bind"] == "*" else params["bind"]
    return [("HAProxy", host, params["haproxy_port"]),
            ("app", "127.0.0.1", params["app_port"]),
            ("app2", "127.0.0.1", params["app2_port"]),
            ("supervisord", "127.0.0.1", params["supervisor_port"])]


def render(name, params):
    template = Template((ETC / TEMPLATES[name]).read_text())
    return template.substitute(params, template=f"etc/{TEMPLATES[name]}")


def render_configs(directory, params):
    """Write supervisord.conf and haproxy.cfg into ``directory``; return their paths."""
    written = {}
    for name in TEMPLATES:
        path = Path(directory) / name
        path.write_text(render(name, params))
        written[name] = path
    return written
