"""The real topology for the end-to-end tests (tests.topologies).

Every test of the topology runs on each store: SQLite always, and the
session's two-node CrateDB cluster whenever CrateDB is found (CRATE_HOME or
a crate on PATH; tests/conftest.py starts it once for every suite)."""
import pytest

from timpe.topology import private

from tests.topologies import Running, start

# Kept importable from here: other tests use them.
free_ports = private.free_ports
processes_under = private.processes_under


@pytest.fixture(scope="session", params=["sqlite", "crate"])
def topology(request, tmp_path_factory):
    if request.param == "crate":
        yield request.getfixturevalue("crate_topology")
        return
    running, prepared = start(tmp_path_factory, "sqlite")
    with running:
        yield Running(prepared)
