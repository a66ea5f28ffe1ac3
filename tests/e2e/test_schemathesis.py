"""`schemathesis run --checks all` against the running topology, through
HAProxy, as a client outside the suite would run it: every check, every
phase (coverage, fuzzing, stateful), the project's schemathesis.toml and
nothing else. Bounded for the suite; for a longer run against `make run`:

    .venv/bin/schemathesis run http://localhost:9100/openapi.json --checks all \
        --header "Authorization: Bearer $(bin/api_key show)"
"""
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.api import process_all
from timpe.auth import client

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXAMPLES = os.environ.get("TIMPE_SCHEMATHESIS_EXAMPLES", "50")


def schemathesis(url, workdir, key, *options, config=ROOT / "schemathesis.toml"):
    # In a directory of its own: schemathesis keeps a cache where it runs.
    # It sends the operator key, and checks that the operations that need a
    # key refuse a request without it (ignored_auth).
    done = subprocess.run(
        [SCHEMATHESIS, "--config-file", str(config), "--no-color",
         "run", f"{url}/openapi.json", "--checks", "all",
         "--header", f"Authorization: {client.headers(key)['Authorization']}",
         "--max-examples", EXAMPLES, "--workers", "2", *options],
        capture_output=True, text=True, timeout=900, cwd=workdir)
    return done.returncode, done.stdout + done.stderr


def test_schemathesis_with_every_check_finds_nothing(topology, tmp_path):
    code, out = schemathesis(topology.url, tmp_path, topology.operator_key)
    # Leave nothing pending for the other tests of the topology.
    process_all(topology.api)
    assert code == 0, out[-8000:]
    assert " passed" in out and "failures" not in out.split("SUMMARY")[-1]


def test_schemathesis_does_fail_where_the_spec_says_too_little(topology, tmp_path):
    """The control: without the project's file, the refusals of schema-valid
    nicknames (RFC 8265 is no pattern) are reported. So the run above can
    fail, and the file relaxes only what it says."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    code, out = schemathesis(topology.url, tmp_path, topology.operator_key,
                             "--include-name", "POST /users",
                             config=empty)
    assert code != 0, out[-4000:]
    assert "Schema-valid request rejected" in out, out[-4000:]
