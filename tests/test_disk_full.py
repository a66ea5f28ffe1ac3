"""A full disk under the SQLite file: every write answers 503 with the
store's reason, nothing acknowledged is lost, and once there is room again
the same node goes on. A real filesystem fills up: a 1 MB tmpfs (mounting
it needs root; elsewhere the test skips)."""
import os
import subprocess

import pytest

from tests.conftest import assert_sound
from tests.spec import SpecTestApp, app_settings
from timpe import main
from timpe.store.sqlite import SQLiteStore


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"no tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory):
    """Write a file until the filesystem has no room left; return its path."""
    path = directory / "filler"
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    return path


def test_a_full_disk_answers_503_loses_nothing_and_passes(small_disk):
    db = str(small_disk / "timpe.sqlite")
    store = SQLiteStore(db)
    store.setup()
    app = SpecTestApp(main({}, **app_settings(db)))
    register = lambda name, balance: app.post_json(  # noqa: E731
        "/users", {"nickname": name, "balance": balance}).json["data"]["id"]
    sender, recipient = register("payer", 1000), register("payee", 0)

    def transfer(expect):
        return app.post_json("/transactions/immediately",
                             {"sender": sender, "recipient": recipient, "amount": 1},
                             status=expect)

    assert transfer(201).json["data"]["state"] == "finished"
    filler = fill(small_disk)
    for _ in range(50):
        refused = transfer(503).json
        assert refused["status"] == "failed"
        assert "disk is full" in refused["msg"], refused
    assert app.get(f"/users/{recipient}").json["data"]["balance"] == 1  # reads go on

    filler.unlink()
    for _ in range(5):
        assert transfer(201).json["data"]["state"] == "finished"
    # A transfer answered 503 may have been begun: it ends now, as any would.
    while app.post("/process").json["more"]:
        pass
    assert_sound(store)
    moved = app.get(f"/users/{recipient}").json["data"]["balance"]
    assert 6 <= moved <= 56
    assert app.get(f"/users/{sender}").json["data"]["balance"] == 1000 - moved
    store.close()
