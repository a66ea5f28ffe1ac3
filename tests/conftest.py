import pytest

from tests.spec import SpecTestApp, app_settings
from tests.topologies import Running, start
from timpe import main
from timpe.audit import audit
from timpe.store.sqlite import SQLiteStore


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "timpe.sqlite")


@pytest.fixture
def store(db_path):
    store = SQLiteStore(db_path)
    store.setup()
    yield store
    store.close()


@pytest.fixture
def app(store, db_path):
    """The WSGI app; every response it gives is checked against the OpenAPI spec."""
    return SpecTestApp(main({}, **app_settings(db_path)))


@pytest.fixture
def register(app):
    """Register a user through the API; return its id."""
    def register(nickname, balance=0):
        return app.post_json("/users", {"nickname": nickname, "balance": balance}).json["data"]["id"]
    return register


def snapshot(store):
    """Every row of every table: to prove a rejected request wrote nothing."""
    return {name: store.sql(f"SELECT * FROM {name} ORDER BY 1, 2")[1]
            for name in ("users", "transactions", "user_transactions", "nicknames")}


def assert_sound(store, require_terminal=True):
    report = audit(store, require_terminal=require_terminal)
    assert report["problems"] == []
    return report


@pytest.fixture(scope="session")
def crate_topology(tmp_path_factory):
    """The session's topology on a two-node CrateDB cluster of its own,
    started once for the store contract and the end-to-end tests; skipped
    where CrateDB is not installed."""
    running, prepared = start(tmp_path_factory, "crate")
    with running:
        yield Running(prepared)
