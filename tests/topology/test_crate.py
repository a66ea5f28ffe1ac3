"""Finding CrateDB, the user it runs as, and the supervisor programs of the
local cluster (read back with supervisor's own config parser).

The `crate` files made here are never run; they only make CrateDB "installed".
"""
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest
from paste.deploy import appconfig
from supervisor.options import ServerOptions

from timpe.paths import ETC
from timpe.store import store_from_settings
from timpe.store.crate import CrateStore
from timpe.topology import crate


def executable(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return path


def test_found_in_crate_home(tmp_path):
    launcher = executable(tmp_path / "crate-5" / "bin" / "crate")
    env = {"CRATE_HOME": str(tmp_path / "crate-5"), "PATH": ""}
    assert crate.find(env) == str(launcher)


def test_found_on_path(tmp_path):
    launcher = executable(tmp_path / "bin" / "crate")
    assert crate.find({"PATH": str(tmp_path / "bin")}) == str(launcher)


def test_missing_says_what_is_missing(tmp_path):
    assert crate.find({"PATH": str(tmp_path)}) is None
    assert "No `crate` executable is on PATH" in crate.missing({"PATH": ""})
    env = {"CRATE_HOME": str(tmp_path), "PATH": ""}
    assert crate.find(env) is None
    assert f"CRATE_HOME is {tmp_path}" in crate.missing(env)


def test_check_command_exits_1_with_the_message(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CRATE_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert crate.main(["check"]) == 1
    assert "CrateDB is not installed" in capsys.readouterr().err
    executable(tmp_path / "crate")
    monkeypatch.setenv("CRATE_USER", pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() else "nobody")
    assert crate.main(["check"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == str(tmp_path / "crate")


def test_an_ordinary_user_runs_crate_as_itself():
    assert crate.run_as({}, euid=1000) is None


def test_root_runs_crate_as_an_existing_user():
    assert crate.run_as({"CRATE_USER": "nobody"}, euid=0) == "nobody"
    with pytest.raises(crate.CrateSetupError, match="refuses to run as root"):
        crate.run_as({"CRATE_USER": "root"}, euid=0)


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, useradd would make the user")
def test_a_user_that_cannot_be_made_is_named():
    with pytest.raises(crate.CrateSetupError, match="no user 'timpe-no-such-user'"):
        crate.run_as({"CRATE_USER": "timpe-no-such-user"}, euid=0)


def supervisor_programs(root, fragment):
    conf = root / "supervisord.conf"
    conf.write_text(f"[supervisord]\nlogfile={root}/s.log\npidfile={root}/s.pid\n"
                    f"[include]\nfiles = {fragment}\n")
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return {pc.name: pc for g in options.process_group_configs for pc in g.process_configs}


def node_settings(program):
    return dict(arg[2:].split("=", 1) for arg in program.command.split()[1:])


@pytest.mark.parametrize("count", crate.NODE_COUNTS)
def test_the_nodes_form_one_cluster(tmp_path, count):
    launcher = executable(tmp_path / "crate-home" / "bin" / "crate")
    cluster = crate.nodes(count)
    out = crate.write_programs(tmp_path / "var" / "crate.conf", cluster, tmp_path / "var" / "crate",
                               tmp_path / "var" / "log", crate=str(launcher))
    programs = supervisor_programs(tmp_path, out)
    names = ["crate", "crate2", "crate3"][:count]
    assert sorted(programs) == names
    settings = {name: node_settings(programs[name]) for name in names}
    for i, name in enumerate(names):
        node, program = settings[name], programs[name]
        assert program.command.split()[0] == str(launcher)
        assert (node["http.port"], node["transport.tcp.port"]) == (str(4200 + i), str(4300 + i))
        assert node["cluster.name"] == "timpe"
        assert node["network.host"] == "127.0.0.1"
        assert node["psql.enabled"] == "false"
        assert node["discovery.seed_hosts"] == ",".join(f"127.0.0.1:{4300 + j}" for j in range(count))
        assert node["cluster.initial_master_nodes"] == ",".join(names)
        assert Path(node["path.data"]).is_dir() and Path(node["path.logs"]).is_dir()
        assert program.environment["CRATE_GC_LOG_DIR"] == node["path.logs"]
        assert Path(program.stdout_logfile).parent == Path(node["path.logs"])
        assert program.priority < 999  # before the app nodes
        assert program.uid is None  # not root here: runs as supervisord's user
    assert len({node["path.data"] for node in settings.values()}) == count


@pytest.fixture
def reachable():
    """A directory other users can reach (pytest's own are its user's only)."""
    path = Path(tempfile.mkdtemp(prefix="timpe-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_as_root_the_nodes_run_as_the_user_who_owns_their_directories(reachable):
    if os.geteuid() != 0:
        pytest.skip("only root can give directories to another user")
    launcher = executable(reachable / "crate-home" / "bin" / "crate")
    out = crate.write_programs(reachable / "crate.conf", crate.nodes(2), reachable / "data",
                               reachable / "log", crate=str(launcher), user="nobody")
    programs = supervisor_programs(reachable, out)
    nobody = pwd.getpwnam("nobody").pw_uid
    for program in programs.values():
        assert program.uid == nobody
        for key in ("path.data", "path.logs"):
            assert Path(node_settings(program)[key]).stat().st_uid == nobody


def test_a_directory_the_user_cannot_reach_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can run the nodes as another user")
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    with pytest.raises(crate.CrateSetupError, match="cannot reach"):
        crate.write_programs(tmp_path / "crate.conf", crate.nodes(2), hidden / "data",
                             hidden / "log", crate="/bin/false", user="nobody")


def test_no_crate_program_without_crate(monkeypatch, tmp_path):
    monkeypatch.delenv("CRATE_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(crate.CrateSetupError, match="CrateDB is not installed"):
        crate.write_programs(tmp_path / "crate.conf", crate.nodes(2), tmp_path, tmp_path)


def test_only_two_or_three_nodes():
    with pytest.raises(crate.CrateSetupError, match="2 or 3 nodes"):
        crate.nodes(4)


def test_the_crate_ini_selects_the_crate_store_on_every_local_node():
    store = store_from_settings(appconfig(f"config:{ETC / 'app-crate.ini'}"))
    assert isinstance(store, CrateStore)
    assert " ".join(store.hosts) == crate.hosts(crate.nodes()) == "localhost:4200 localhost:4201"


def test_a_three_node_ini_names_every_node(tmp_path):
    ini = crate.app_ini(tmp_path / "app-crate.ini", crate.nodes(3), ETC / "app.ini")
    store = store_from_settings(appconfig(f"config:{ini}"))
    assert isinstance(store, CrateStore)
    assert store.hosts == ["localhost:4200", "localhost:4201", "localhost:4202"]


def test_a_cluster_that_cannot_serve_is_told_with_its_nodes_last_log_lines(tmp_path):
    """Its directory goes when the topology stops: the error keeps what the
    nodes said (the last lines of each log, the collector's left out)."""
    from timpe.topology.private import LOG_TAIL, log_tails

    for node, name in (("crate", "supervisor.log"), ("crate2", "timpe-e2e.log"),
                       ("crate", "gc.log")):
        (tmp_path / "log" / node).mkdir(parents=True, exist_ok=True)
        (tmp_path / "log" / node / name).write_text(
            "".join(f"{node} {name} line {i}\n" for i in range(LOG_TAIL + 5)))
    told = log_tails(tmp_path)
    for node, name in (("crate", "supervisor.log"), ("crate2", "timpe-e2e.log")):
        assert f"the last lines of {tmp_path}/log/{node}/{name}:" in told
        assert f"{node} {name} line {LOG_TAIL + 4}\n" in told + "\n"
        assert f"{node} {name} line 4\n" not in told  # older than the tail
        assert f"{node} {name} line 5\n" in told
    assert "gc.log" not in told
    assert log_tails(None) == "" and log_tails(tmp_path / "none") == ""
