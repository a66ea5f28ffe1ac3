"""Acknowledged means on disk: no write is answered before it is synced.

On SQLite, strace watches a real node's worker while registrations and
transfers go to it one at a time, then reads of what they wrote: between
one answer and the next, the node must have synced the WAL at least once
(an answer sent before its sync would report what a power loss can undo).
At the default (ANSWER) every answer that used the store waits for a sync;
at FULL every commit syncs, so the writes' answers follow one and the
reads need none. The same count run at NORMAL finds answers with no sync
before them, so the check tells them apart. On CrateDB, the tables keep the
per-request translog, and every table has one shard with a copy on each of
the two nodes.
"""
import re
import time

import pytest

from timpe.auth import client
from timpe.bench.rss import children
from timpe.topology import private

from tests import tracing
from tests.e2e.api import Api, nick

WRITES = 12  # registrations and transfers, each acknowledged with a 201
READS = 8  # balances and transfer states, each a 200
_LINE = re.compile(r"^(?P<tid>\d+) +(?P<call>.*)$")


@pytest.fixture(scope="module", params=["default", "FULL", "NORMAL"])
def node(request, tmp_path_factory):
    settings = {} if request.param == "default" else {"sqlite.synchronous": request.param}
    prepared = private.prepare(tmp_path_factory.mktemp(f"durability-{request.param}"),
                               identifier="timpe-durability", settings=settings)
    with private.running(prepared):
        yield request.param, prepared


def traced(prepared, log):
    """Send WRITES acknowledged writes, then READS reads of them, one at a
    time, to one node's worker under strace; return strace's lines."""
    worker, = children(prepared.topology.pid("app"))
    api = Api(f"http://127.0.0.1:{prepared.ports.app}", key=client.operator_key(prepared.ini))
    with tracing.attached(worker, log, ("fsync", "fdatasync", "sendto", "sendmsg", "write",
                                        "writev"),
                          lambda: api.session.get(api.url + "/probe_status", timeout=5)) as lines:
        users = [api.register(nick("d"), 1000) for _ in range(WRITES // 3)]
        txns = []
        for n in range(WRITES - len(users)):
            status, body = api.transfer(users[n % len(users)], users[(n + 1) % len(users)], 1,
                                        immediately=n % 2 == 0)
            assert status == 201, body
            txns.append(body["data"]["id"])
        for n in range(READS):
            if n % 2:
                api.balance(users[n % len(users)])
            else:
                api.state(txns[n % len(txns)])
        return lines()


def syncs_before_each_answer(lines):
    """For each answer the worker sent the test's client, its status and how
    many WAL syncs ended since the previous one (a sync another thread's
    line interrupts is counted when it resumes). The client's connection is
    the one the first 201 went to: HAProxy's health checks come on others."""
    answers, synced, pending, client = [], 0, {}, None
    for line in lines:
        match = _LINE.match(line)
        if not match:
            continue
        tid, call = match["tid"], match["call"]
        if call.startswith(("fsync(", "fdatasync(")) and "-wal>" in call:
            if call.endswith("<unfinished ...>"):
                pending[tid] = True
            elif call.endswith("= 0"):
                synced += 1
        elif "sync resumed>" in call and pending.pop(tid, False) and call.endswith("= 0"):
            synced += 1
        elif call.startswith(("sendto(", "write(", "writev(", "sendmsg(")) and '"HTTP/1.1 ' in call:
            status, socket = call.split('"HTTP/1.1 ', 1)[1][:3], call.split(",", 1)[0]
            client = client or (socket if status == "201" else None)
            if socket == client:
                answers.append((status, synced))
                synced = 0
    return answers


def test_no_answer_reports_what_is_not_synced(node, tmp_path):
    setting, prepared = node
    answers = syncs_before_each_answer(traced(prepared, tmp_path / "strace.log"))
    assert [status for status, _ in answers] == ["201"] * WRITES + ["200"] * READS, answers
    writes = [count for _, count in answers[:WRITES]]
    reads = [count for _, count in answers[WRITES:]]
    if setting == "default":  # ANSWER: every answer waits for a sync
        assert all(count >= 1 for count in writes + reads), str(answers)
    elif setting == "FULL":  # each commit synced before anyone saw it
        assert all(count >= 1 for count in writes), answers
        assert reads.count(0) >= READS // 2, answers
    else:  # NORMAL syncs only at checkpoints: the count sees the difference
        assert writes.count(0) >= WRITES // 2, answers
        assert reads.count(0) >= READS // 2, answers


def test_crate_tables_keep_the_per_request_translog(crate_topology):
    store = crate_topology.store()
    columns, rows = store.sql(
        "SELECT table_name, settings['translog']['durability'] FROM information_schema.tables "
        "WHERE table_schema = ?", [store.schema or "doc"])
    durability = dict(rows)
    assert {"users", "transactions", "user_transactions"} <= set(durability)
    assert set(durability.values()) == {"REQUEST"}, durability


def test_crate_tables_have_one_shard_with_a_copy_on_each_node(crate_topology):
    """One shard a table: a bulk request's rows reach one primary and its
    replica (etc/mappings/crate/user_transactions.sql says why), and either
    node may die without an acknowledged row (its copy is on the other)."""
    store = crate_topology.store()
    schema, tables = store.schema or "doc", ["users", "transactions", "user_transactions",
                                             "nicknames"]
    marks = ", ".join("?" * len(tables))
    shards = dict(store.sql("SELECT table_name, number_of_shards FROM information_schema.tables "
                            f"WHERE table_schema = ? AND table_name IN ({marks})",
                            [schema, *tables])[1])
    assert shards == dict.fromkeys(tables, 1), shards

    def layout():
        """{table: (primaries, replicas, nodes)} of its started copies."""
        copies = {t: [] for t in tables}
        for table, primary, node in store.sql(
                "SELECT table_name, \"primary\", node['name'] FROM sys.shards WHERE "
                f"schema_name = ? AND table_name IN ({marks}) AND state = 'STARTED'",
                [schema, *tables])[1]:
            copies[table].append((primary, node))
        return {t: (sum(p for p, _ in c), sum(not p for p, _ in c), len({n for _, n in c}))
                for t, c in copies.items()}

    wanted, deadline = dict.fromkeys(tables, (1, 1, 2)), time.monotonic() + 60
    while (found := layout()) != wanted and time.monotonic() < deadline:
        time.sleep(1)  # a replica may still be recovering
    assert found == wanted
