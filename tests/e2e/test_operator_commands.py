"""bin/ commands against the running test topology."""
import subprocess

from timpe.paths import BIN


def bin_(name, *args, **kwargs):
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_u2u_transactions(topology):
    assert bin_("crate_testdata", "--config", str(topology.ini)).returncode == 0
    for flags in ([], ["-i"]):
        done = bin_("u2u_transactions", "--url", topology.url, "-t", "40", "-c", "4", *flags)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "balances add up" in done.stdout
        assert "N(N+1)/2 = 820" in done.stdout


def test_crash_runs_the_seed_checks(topology):
    bin_("crate_testdata", "--config", str(topology.ini))
    users = bin_("crash", "--config", str(topology.ini), input="SELECT * FROM users\n")
    assert users.returncode == 0, users.stderr
    assert "elon_musk" in users.stdout and "rows in set" in users.stdout
    sums = bin_("crash", "--config", str(topology.ini),
                input="SELECT user_id, sum(amount) FROM user_transactions GROUP BY user_id")
    assert sums.returncode == 0, sums.stderr
    assert "sum(amount)" in sums.stdout


def test_supervisorctl_status(topology):
    status = bin_("supervisorctl", "-c", str(topology.home / "supervisord.conf"), "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name in ("haproxy", "app", "app2"):
        assert name in status.stdout
    assert status.stdout.count("RUNNING") == 3
