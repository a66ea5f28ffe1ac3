"""Finding CrateDB and the supervisor programs of the local two-node cluster.

The rendered programs are read back with supervisor's own config parser.
The `crate` files made here are never run; they only make CrateDB "installed".
"""
from pathlib import Path

from paste.deploy import appconfig
from supervisor.options import ServerOptions

from timpe import crate_cluster
from timpe.store import store_from_settings
from timpe.store.crate import CrateStore


def executable(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return path


def test_found_in_crate_home(tmp_path):
    launcher = executable(tmp_path / "crate-5" / "bin" / "crate")
    env = {"CRATE_HOME": str(tmp_path / "crate-5"), "PATH": ""}
    assert crate_cluster.find(env) == str(launcher)


def test_found_on_path(tmp_path):
    launcher = executable(tmp_path / "bin" / "crate")
    assert crate_cluster.find({"PATH": str(tmp_path / "bin")}) == str(launcher)


def test_missing_says_what_is_missing(tmp_path):
    assert crate_cluster.find({"PATH": str(tmp_path)}) is None
    assert "No `crate` executable is on PATH" in crate_cluster.missing({"PATH": ""})
    env = {"CRATE_HOME": str(tmp_path), "PATH": ""}
    assert crate_cluster.find(env) is None
    assert f"CRATE_HOME is {tmp_path}" in crate_cluster.missing(env)


def test_check_command_exits_1_with_the_message(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CRATE_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert crate_cluster.main(["check"]) == 1
    assert "CrateDB is not installed" in capsys.readouterr().err
    executable(tmp_path / "crate")
    assert crate_cluster.main(["check"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "crate")


def supervisor_programs(root, fragment):
    conf = root / "supervisord.conf"
    conf.write_text(f"[supervisord]\nlogfile={root}/s.log\npidfile={root}/s.pid\n"
                    f"[include]\nfiles = {fragment}\n")
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return {pc.name: pc for g in options.process_group_configs for pc in g.process_configs}


def test_two_nodes_form_one_cluster(monkeypatch, tmp_path):
    launcher = executable(tmp_path / "crate-home" / "bin" / "crate")
    monkeypatch.setenv("CRATE_HOME", str(tmp_path / "crate-home"))
    assert crate_cluster.main(["supervisor-conf", "--root", str(tmp_path),
                               "--output", str(tmp_path / "var" / "crate.conf")]) == 0
    programs = supervisor_programs(tmp_path, tmp_path / "var" / "crate.conf")
    assert sorted(programs) == ["crate", "crate2"]
    settings = {}
    for name, program in programs.items():
        argv = program.command.split()
        assert argv[0] == str(launcher)
        settings[name] = dict(arg[2:].split("=", 1) for arg in argv[1:])
        assert Path(program.stdout_logfile).parent.is_dir()
        assert program.priority < 999  # before the app nodes
    crate, crate2 = settings["crate"], settings["crate2"]
    assert (crate["http.port"], crate["transport.tcp.port"]) == ("4200", "4300")
    assert (crate2["http.port"], crate2["transport.tcp.port"]) == ("4201", "4301")
    for node in (crate, crate2):
        assert node["cluster.name"] == "timpe"
        assert node["network.host"] == "127.0.0.1"
        assert node["discovery.seed_hosts"] == "127.0.0.1:4300,127.0.0.1:4301"
        assert node["cluster.initial_master_nodes"] == "crate,crate2"
        for path in ("path.data", "path.logs"):
            assert Path(node[path]).is_relative_to(tmp_path / "var")
    assert crate["path.data"] != crate2["path.data"]


def test_no_crate_program_without_crate(monkeypatch, tmp_path):
    monkeypatch.delenv("CRATE_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "var" / "crate.conf"
    assert crate_cluster.main(["supervisor-conf", "--root", str(tmp_path), "--output", str(out)]) == 0
    assert supervisor_programs(tmp_path, out) == {}


def test_the_crate_ini_selects_the_crate_store_on_every_local_node():
    settings = appconfig(f"config:{crate_cluster.ROOT / 'etc' / 'app-crate.ini'}")
    store = store_from_settings(settings)
    assert isinstance(store, CrateStore)
    assert " ".join(store.hosts) == crate_cluster.hosts() == "localhost:4200 localhost:4201"
