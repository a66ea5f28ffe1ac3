"""The committed configs are the templates' rendering, and valid."""
import subprocess

import pytest
from supervisor.options import ServerOptions

from timpe.cli.node import gunicorn_argv
from timpe.paths import HAPROXY_CFG, SUPERVISORD_CONF
from timpe.topology.render import Ports, find_haproxy, parameters, render, render_configs


@pytest.mark.parametrize("name,path", [("supervisord.conf", SUPERVISORD_CONF),
                                       ("haproxy.cfg", HAPROXY_CFG)])
def test_committed_file_is_the_rendered_template(name, path):
    assert path.read_text() == render(name, parameters()), \
        f"{path.name} is stale: run `make configs` after editing etc/{name}.in"


def test_haproxy_accepts_its_config(tmp_path):
    haproxy = find_haproxy()
    assert haproxy, "haproxy is not installed (make test installs it)"
    done = subprocess.run([haproxy, "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = HAPROXY_CFG.read_text()
    assert "bind *:9100" in text
    assert "http-check send meth GET uri /probe_status" in text
    assert "stats uri /__haproxy_stats" in text
    assert "acl local src 127.0.0.1 ::1" in text
    assert "use-service prometheus-exporter if { path /__haproxy_stats/metrics } local" in text
    # The rate limits of the seed's topology (tests/e2e/test_edge.py floods its own).
    assert "if { sc_http_req_rate(0) gt 200 }" in text and "if { sc_http_req_rate(1) gt 100 }" in text
    assert "server app 127.0.0.1:9210" in text and "server app2 127.0.0.1:9211" in text


def test_supervisor_runs_the_seed_programs_locally_only(monkeypatch, tmp_path):
    monkeypatch.setenv("TIMPE_CONFIG", "/somewhere/app.ini")
    monkeypatch.setenv("TIMPE_SUPERVISOR_USER", "operator")
    monkeypatch.setenv("TIMPE_SUPERVISOR_PASSWORD", "s3cret")
    # The committed file in a fresh directory: its %(here)s/var is made there.
    conf = tmp_path / "supervisord.conf"
    conf.write_text(SUPERVISORD_CONF.read_text())
    for sub in ("log", "run"):
        (tmp_path / "var" / sub).mkdir(parents=True)
    options = ServerOptions()
    options.realize(["-c", str(conf)])
    programs = {p.name: p for g in options.process_group_configs for p in g.process_configs}
    assert set(programs) == {"haproxy", "app", "app2"}
    for name, port in (("app", 9210), ("app2", 9211)):
        program = programs[name]
        assert f"--port {port}" in program.command and program.autorestart
        assert "--config /somewhere/app.ini" in program.command
        assert program.stopasgroup and program.killasgroup
        assert program.stdout_logfile == str(tmp_path / "var" / "log" / f"{name}.log")
        # Each node's own directory for its workers' metrics.
        assert program.environment == {
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "var" / "metrics" / name)}
    # Control: a unix socket only its owner may use, and an HTTP port on
    # 127.0.0.1 that asks for the login from the environment.
    servers = {s["family"]: s for s in options.server_configs}
    assert servers[1]["chmod"] == 0o700  # AF_UNIX
    inet = servers[2]  # AF_INET
    assert (inet["host"], inet["port"]) == ("127.0.0.1", 9001)
    assert (inet["username"], inet["password"]) == ("operator", "s3cret")


def test_app_nodes_listen_on_localhost_with_gevent():
    argv = gunicorn_argv("etc/app.ini", 9210, 3)
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:9210"
    assert argv[argv.index("--worker-class") + 1] == "timpe.node_worker.Worker"
    assert argv[argv.index("--workers") + 1] == "3"
    assert "--paste" in argv
    assert argv[argv.index("--config") + 1] == "python:timpe.node_hooks"


def test_other_ports_and_directory(tmp_path):
    written = render_configs(tmp_path, parameters(Ports(1, 2, 3), var="/x/var", bind="127.0.0.1"))
    supervisord = written["supervisord.conf"].read_text()
    haproxy = written["haproxy.cfg"].read_text()
    assert "bind 127.0.0.1:1" in haproxy and "127.0.0.1:2" in haproxy and "127.0.0.1:3" in haproxy
    assert "file = /x/var/run/supervisor.sock" in supervisord
    assert "9100" not in haproxy + supervisord and "9210" not in haproxy + supervisord


def test_unknown_parameter_is_refused():
    with pytest.raises(TypeError):
        parameters(prot=1)


def test_crate_store_without_cratedb_says_what_is_missing(monkeypatch):
    from timpe.cli import topology

    monkeypatch.delenv("CRATE_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(topology, "find_haproxy", lambda: "/usr/sbin/haproxy")
    with pytest.raises(SystemExit) as stop:
        topology.main(["up", "--store", "crate"])
    assert "CrateDB is not installed" in str(stop.value)
