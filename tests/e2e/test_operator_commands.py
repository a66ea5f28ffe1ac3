"""bin/ commands against the running test topology."""
import subprocess

from timpe.paths import BIN
from tests.processes import stop_gently


def bin_(name, *args, **kwargs):
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_u2u_transactions(topology):
    assert bin_("crate_testdata", "--config", str(topology.ini)).returncode == 0
    for flags in ([], ["-i"]):
        done = bin_("u2u_transactions", "--url", topology.url, "--config", str(topology.ini),
                    "-t", "40", "-c", "4", *flags)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "balances add up" in done.stdout
        assert "N(N+1)/2 = 820" in done.stdout


def test_u2u_transactions_uniform_and_zipf(topology):
    assert bin_("crate_testdata", "--config", str(topology.ini)).returncode == 0
    for shape, flags in (("uniform", []), ("zipf", ["--users", "60"])):
        done = bin_("u2u_transactions", "--url", topology.url, "--config", str(topology.ini),
                    "-t", "60", "-c", "6", "-i", "--workload", shape, *flags)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "balances add up" in done.stdout
        users = 4 if shape == "uniform" else 60
        assert f"{shape} over {users} users: 0 balances differ" in done.stdout


def test_u2u_transactions_lists_users_a_page_at_a_time(topology):
    # Every user once, as a listing of all at once shows them (balances
    # may move between the two: the topology's recovery runs meanwhile).
    from timpe.auth import client as auth_client
    from timpe.cli import u2u

    assert bin_("crate_testdata", "--config", str(topology.ini)).returncode == 0
    api = u2u.Client(topology.url, 60, auth_client.api_key(topology.ini))
    whole = api.json("GET", "/users")[1]["data"]
    paged = u2u.balances(api, page=3)
    assert len(whole) > 3
    assert sorted((u["id"], u["nickname"]) for u in paged) == sorted(
        (u["id"], u["nickname"]) for u in whole)
    assert all(set(u) >= {"balance", "held"} for u in paged)


def test_crash_runs_the_seed_checks(topology):
    bin_("crate_testdata", "--config", str(topology.ini))
    # CrateDB's searches show what the last refresh made visible.
    refresh = "REFRESH TABLE users;\n" if topology.store_name == "crate" else ""
    users = bin_("crash", "--config", str(topology.ini), input=f"{refresh}SELECT * FROM users\n")
    assert users.returncode == 0, users.stderr
    # CrateDB's crash says how many rows on stderr, the seed's SQLite shell on stdout.
    assert "elon_musk" in users.stdout and "rows in set" in users.stdout + users.stderr
    sums = bin_("crash", "--config", str(topology.ini),
                input="SELECT user_id, sum(amount) FROM user_transactions GROUP BY user_id")
    assert sums.returncode == 0, sums.stderr
    # The column is sum(amount) on SQLite, sum on CrateDB.
    header = next(line for line in sums.stdout.splitlines() if "user_id" in line)
    assert "sum" in header and "elon_musk" not in sums.stdout


def test_supervisorctl_status(topology):
    status = bin_("supervisorctl", "-c", str(topology.home / "supervisord.conf"), "status")
    assert status.returncode == 0, status.stdout + status.stderr
    programs = ["haproxy", "app", "app2"] + [node.name for node in topology.cluster]
    for name in programs:
        assert name in status.stdout
    assert status.stdout.count("RUNNING") == len(programs)


def test_supervisorctl_says_when_supervisord_is_not_running(tmp_path):
    """Not a socket's URL and "no such file": what is wrong and what to do."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisorctl]\nserverurl = unix://{tmp_path}/supervisor.sock\n")
    status = bin_("supervisorctl", "-c", str(conf), "status")
    assert status.returncode == 4, status.stdout + status.stderr
    assert status.stderr == (f"bin/supervisorctl: supervisord is not running ({tmp_path}/"
                             "supervisor.sock is not there); start everything with make run\n")


def test_app_runs_one_node_in_the_foreground(tmp_path):
    import shutil
    import time

    import requests

    from tests.e2e.conftest import free_ports
    from timpe.paths import APP_INI

    (tmp_path / "etc").mkdir()
    shutil.copy(APP_INI, tmp_path / "etc" / "app.ini")
    port = free_ports(1)[0]
    node = subprocess.Popen([str(BIN / "app"), "--config", str(tmp_path / "etc" / "app.ini"),
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/probe_status", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.text == "OK"
    finally:
        stop_gently(node, 20)


def test_bin_test_runs_pytest():
    done = bin_("test", "--collect-only", "-q", "tests/topology/test_configs.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_committed_file_is_the_rendered_template" in done.stdout
