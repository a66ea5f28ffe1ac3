"""bin/crate_setup, crate_cleanup, crate_testdata and crash on a temporary store."""
import shutil
import subprocess

import pytest

from timpe.cli import crash, db, open_store
from timpe.paths import APP_INI, BIN


@pytest.fixture
def ini(tmp_path):
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "app.ini"
    shutil.copy(APP_INI, path)  # %(here)s/../var: the store lands in tmp_path/var
    return path


def run(name, ini, *args, **kwargs):
    return subprocess.run([str(BIN / name), "--config", str(ini), *args],
                          capture_output=True, text=True, timeout=60, **kwargs)


def nicknames(ini):
    return sorted(r[0] for r in open_store(ini).sql("SELECT nickname FROM users")[1])


def test_setup_and_testdata_can_be_rerun(ini):
    first = run("crate_setup", ini)
    assert first.returncode == 0 and "created tables" in first.stdout
    assert run("crate_testdata", ini).returncode == 0
    again = run("crate_setup", ini)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    rerun = run("crate_testdata", ini)
    assert rerun.returncode == 0 and "registered already" in rerun.stdout
    assert nicknames(ini) == sorted(n for n, _ in db.TEST_USERS)
    assert {"elon_musk", "nikola_tesla"} <= set(nicknames(ini))


def test_testdata_before_setup_says_what_to_do(ini):
    done = run("crate_testdata", ini)
    assert done.returncode != 0 and "crate_setup" in done.stderr


def test_cleanup_asks_first(ini):
    run("crate_setup", ini)
    run("crate_testdata", ini)
    refused = run("crate_cleanup", ini, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert len(nicknames(ini)) == 4
    declined = subprocess.run(  # a terminal that answers "n"
        ["script", "-qec", f"{BIN / 'crate_cleanup'} --config {ini}", "/dev/null"],
        input="n\n", capture_output=True, text=True, timeout=60)
    assert "aborted" in declined.stdout
    assert len(nicknames(ini)) == 4
    done = run("crate_cleanup", ini, "--yes")
    assert done.returncode == 0
    assert open_store(ini).sql("SELECT name FROM sqlite_master WHERE type = 'table'")[1] == []


def test_crash_statements_and_errors(ini):
    run("crate_setup", ini)
    run("crate_testdata", ini)
    done = run("crash", ini, input="SELECT nickname FROM users WHERE nickname = 'elon_musk';\n"
                                   "SELECT count(*) AS n\n  FROM users;\nSELECT nope FROM users;\n")
    assert "| elon_musk |" in done.stdout
    assert "| 4 |" in done.stdout
    assert "no such column" in done.stderr and done.returncode == 1
    one = run("crash", ini, "-c", "SELECT 1 AS one")
    assert one.returncode == 0 and "| 1   |" in one.stdout


def test_statement_splitting():
    assert list(crash.statements(["SELECT 1;", "SELECT ';'", " ;", "SELECT 3"])) == [
        "SELECT 1;", "SELECT ';'\n ;", "SELECT 3"]


def test_audit_before_setup_gives_no_verdict_and_says_what_to_do(ini):
    done = run("audit", ini)
    assert done.returncode == 2, done.stderr
    assert "no such table" in done.stderr and "crate_setup" in done.stderr
    assert "Traceback" not in done.stderr and "problems" not in done.stdout


def test_audit_tells_a_sound_store_from_a_broken_one(ini):
    from timpe.ledger import next_row
    from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS
    from timpe.transactions.services import TransactionService

    run("crate_setup", ini)
    run("crate_testdata", ini)
    store = open_store(ini)
    service = TransactionService(store)
    elon, nikola = (store.scan("users", where={"nickname": [name]})[0]["id"]
                    for name in ("elon_musk", "nikola_tesla"))
    service.immediately(elon, nikola, 500)
    queued, _ = service.create(nikola, elon, 7)  # under way until a /process
    sound = run("audit", ini)
    assert sound.returncode == 0 and "audit: 0 problems" in sound.stdout, sound.stdout
    at_rest = run("audit", ini, "--at-rest")
    assert at_rest.returncode == 1
    assert f"{queued['id']}: still 'initial'" in at_rest.stdout
    service.process()
    assert run("audit", ini, "--at-rest").returncode == 0

    # A row no node would write: a credit of a transfer that is not there.
    head = store.scan(USER_TRANSACTIONS.name, where={"user_id": [nikola]},
                      order_by=("seq",))[-1]
    assert store.insert(USER_TRANSACTIONS.name, next_row(head, [("t-nowhere", 1)])[0])
    broken = run("audit", ini)
    assert broken.returncode == 1
    assert "audit: 2 problems" in broken.stdout
    assert "  ledger rows for unknown transaction t-nowhere" in broken.stdout
    assert "money not conserved" in broken.stdout
    assert store.scan(TRANSACTIONS.name, where={"id": ["t-nowhere"]}) == []
