"""bin/u2u_transactions: concurrent transfers through HAProxy, then a check.

``--workload hot`` (the default, the seed's load) transfers the amounts
1..N from one user to another (elon_musk to nikola_tesla by default), so N
transfers move N(N+1)/2 when all succeed. ``uniform`` sends 0.01 between
any two of the seed's four test users, ``zipf`` between ZIPF_USERS users
of its own (registered if missing), each drawn with a probability that
falls with its rank as 1 / rank ** 1.1; both then check every user's
balance against the transfers that finished.
It deletes nothing; run it on a topology no one else is moving these
users' money on, or the check cannot add up.
"""
import argparse
import queue
import random
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import requests

from timpe.auth import client as auth_client
from timpe.bench.percentiles import percentile
from timpe.bench import workloads
from timpe.bench.workloads import ZIPF_EXPONENT
from timpe.cli import add_config_argument
from timpe.cli.db import TEST_USERS
from timpe.users.services import user_id

DEFAULT_URL = "http://localhost:9100"
PROCESS_BATCH = 2000
#: Users a listing request asks for.
PAGE = 1000
WORKLOADS = ("hot", "uniform", "zipf")
ZIPF_USERS = 10_000
ZIPF_BALANCE = 1000


class Run:
    """What the workers record: one entry per transfer attempt."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.kinds = Counter()
        self.acknowledged = {}       # transaction id -> (sender, recipient, amount)
        self.unknown = []            # (sender, recipient, amount) of unknown outcome
        self.done = 0

    def record(self, item, latency, kind, txn_id=None):
        with self.lock:
            self.done += 1
            self.kinds[kind] += 1
            if latency is not None:
                self.latencies.append(latency)
            if txn_id is not None:
                self.acknowledged[txn_id] = item
            elif not kind.startswith("http 4"):  # a 4xx recorded nothing
                self.unknown.append(item)


class Client:
    def __init__(self, url, timeout, key=None):
        """``key``: the API key sent with every request (timpe.auth.client)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = auth_client.authenticate(requests.Session(), key)
        self.balance_reads = []

    def json(self, method, path, **kwargs):
        response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        try:
            body = response.json(parse_float=Decimal)
        except ValueError:
            body = {}
        return response, body

    def balance(self, uid):
        started = time.perf_counter()
        response, body = self.json("GET", f"/users/{uid}")
        self.balance_reads.append(time.perf_counter() - started)
        if response.status_code == 404:
            raise SystemExit(f"user {uid} is not registered: load the test users "
                             "with bin/crate_testdata (or pick others with --sender/--recipient)")
        response.raise_for_status()
        return Decimal(str(body["data"]["balance"]))


def _pool(count, work, items):
    """Run ``work(session_client, item)`` for every item on ``count`` threads."""
    tasks = queue.Queue()
    for item in items:
        tasks.put(item)

    def worker():
        client = work.client_factory()
        while True:
            try:
                item = tasks.get_nowait()
            except queue.Empty:
                return
            work(client, item)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def transfer(endpoint, run):
    def work(client, item):
        sender, recipient, amount = item
        payload = {"sender": sender, "recipient": recipient, "amount": amount}
        started = time.perf_counter()
        try:
            response, body = client.json("POST", endpoint, json=payload)
        except requests.RequestException as exc:
            run.record(item, None, type(exc).__name__)
            return
        latency = time.perf_counter() - started
        txn_id = (body.get("data") or {}).get("id") if response.ok else None
        run.record(item, latency, f"http {response.status_code}", txn_id)
    return work


def workload_users(args, client):
    """The users ``args.workload`` sends between, by id (nickname, id)."""
    if args.workload == "uniform":
        return [user_id(name) for name, _ in TEST_USERS]
    names = [f"u2u_z{i:05d}" for i in range(args.users)]
    registered = {u["id"] for u in balances(client)}
    missing = [n for n in names if user_id(n) not in registered]

    def work(client, name):
        client.json("POST", "/users", json={"nickname": name, "balance": ZIPF_BALANCE})
    work.client_factory = lambda: Client(args.url, args.timeout, args.key)
    for thread in _pool(min(args.concurrency, 32), work, missing):
        thread.join()
    return [user_id(n) for n in names]


def workload_items(args, ids):
    pairs = workloads.pairs(args.workload, ids, args.transactions, random.Random(7))
    return [(sender, recipient, Decimal("0.01")) for sender, recipient in pairs]


def balances(client, page=PAGE):
    """Every user with balance, a page of ``page`` a request: a request for
    all of a grown store's users (each balance a proven head) can outlast
    the client's timeout."""
    users, after = [], None
    while True:
        params = {"limit": page} if after is None else {"limit": page, "after": after}
        response, body = client.json("GET", "/users", params=params)
        response.raise_for_status()
        users += body["data"]
        after = body["next"]
        if after is None:
            return users


def progress(run, total, stream=sys.stderr, width=40):
    if not stream.isatty():
        return
    filled = int(width * run.done / total) if total else width
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {run.done}/{total}")
    stream.flush()


def states_of(client_factory, ids, concurrency):
    """The current state of each acknowledged transaction."""
    states, lock = {}, threading.Lock()

    def work(client, txn_id):
        try:
            response, body = client.json("GET", f"/transactions/{txn_id}")
            state = body["data"]["state"] if response.ok else f"http {response.status_code}"
        except requests.RequestException as exc:
            state = type(exc).__name__
        with lock:
            states[txn_id] = state
    work.client_factory = client_factory
    for thread in _pool(concurrency, work, ids):
        thread.join()
    return states


def process_all(client, batch=PROCESS_BATCH):
    """POST /process?limit= until a batch finds nothing: each call stays far
    below HAProxy's 60 s server timeout however many transfers are queued."""
    t0, processed, calls, statuses = time.perf_counter(), 0, 0, Counter()
    while True:
        response, body = client.json("POST", f"/process?limit={batch}")
        calls += 1
        statuses[f"http {response.status_code}"] += 1
        done = body.get("processed", 0) if response.ok else 0
        processed += done
        if not done or calls >= 1000:
            break
    answers = ", ".join(f"{k} x{n}" for k, n in sorted(statuses.items()))
    return (f"POST /process?limit={batch}: {processed} processed in "
            f"{time.perf_counter() - t0:.2f} s ({answers})")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--transactions", type=int, default=100, help="how many transfers (N)")
    parser.add_argument("-c", "--concurrency", type=int, default=10, help="concurrent clients")
    parser.add_argument("-i", "--immediately", action="store_true",
                        help="use /transactions/immediately (default: /transactions, "
                             "then POST /process at the end)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the API (default {DEFAULT_URL})")
    parser.add_argument("--sender", default="elon_musk", help="nickname of the payer")
    parser.add_argument("--recipient", default="nikola_tesla", help="nickname of the payee")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    add_config_argument(parser)  # where the operator key is
    parser.add_argument("--key", help=f"the API key to send (default: ${auth_client.ENV}, else the "
                                      "operator key the app's ini names)")
    parser.add_argument("-w", "--workload", choices=WORKLOADS, default="hot",
                        help="hot: --sender to --recipient, the seed's load (default); "
                             "uniform: any two of the seed's four test users; zipf: "
                             f"--users of its own, by rank ** -{ZIPF_EXPONENT}")
    parser.add_argument("--users", type=int, default=ZIPF_USERS,
                        help=f"zipf: how many users (default {ZIPF_USERS})")
    args = parser.parse_args(argv)
    if args.transactions < 1 or args.concurrency < 1 or args.users < 2:
        parser.error("-t and -c must be at least 1, --users at least 2")
    args.key = args.key or auth_client.api_key(args.config)
    return args


def main(argv=None):
    args = parse_args(argv)
    make_client = lambda: Client(args.url, args.timeout, args.key)  # noqa: E731
    main_client = make_client()
    if args.workload == "hot":
        return hot(args, make_client, main_client)
    try:
        ids = workload_users(args, main_client)
    except requests.RequestException as exc:
        sys.exit(f"cannot reach the API at {args.url}: {exc}")
    before = {u["id"]: Decimal(str(u["balance"])) for u in balances(main_client)}
    run, elapsed, process_note, states = load(args, make_client, main_client,
                                              workload_items(args, ids))
    after = {u["id"]: Decimal(str(u["balance"])) for u in balances(main_client)}
    expected = Counter()
    for txn_id, (sender, recipient, amount) in run.acknowledged.items():
        if states.get(txn_id) == "finished":
            expected[sender] -= amount
            expected[recipient] += amount
    diff = {uid: after.get(uid, 0) - before.get(uid, 0) for uid in set(after) | set(before)}
    unfinished = Counter(s for s in states.values() if s not in ("finished", "failed"))
    wrong = [uid for uid in diff if diff[uid] != expected.get(uid, 0)]
    # A transfer whose answer was lost may have moved money: then only the
    # sum must hold.
    adds_up = (sum(diff.values()) == 0 and not unfinished
               and (not wrong or bool(run.unknown)) and min(after.values(), default=0) >= 0)
    report(args, run, elapsed, process_note, states, main_client)
    print(f"{args.workload} over {len(ids)} users: {len(wrong)} balances differ from the "
          f"finished transfers" + (" (some answers were lost)" if run.unknown else ""))
    print("balances add up" if adds_up else "BALANCES DO NOT ADD UP")
    return 0 if adds_up else 1


def load(args, make_client, main_client, items):
    """Send ``items`` concurrently; process what needs it; return (run,
    seconds, the /process note, {acknowledged id: state})."""
    endpoint = "/transactions/immediately" if args.immediately else "/transactions"
    total, run = len(items), Run()
    work = transfer(endpoint, run)
    work.client_factory = make_client
    started = time.perf_counter()
    threads = _pool(min(args.concurrency, total), work, items)
    while any(t.is_alive() for t in threads):
        progress(run, total)
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    progress(run, total)
    print(file=sys.stderr)
    process_note = ""
    # Phase 2 for /transactions; with -i only when some answer was lost, to
    # finish what such a request may have left half done.
    if not args.immediately or run.unknown:
        process_note = process_all(main_client)
    states = states_of(make_client, list(run.acknowledged), min(args.concurrency, 16))
    return run, elapsed, process_note, states


def report(args, run, elapsed, process_note, states, main_client):
    total = args.transactions
    endpoint = "/transactions/immediately" if args.immediately else "/transactions"
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    reads = main_client.balance_reads
    if reads:
        print(f"average time to read a balance: {ms(sum(reads) / len(reads))} ({len(reads)} reads)")
    print(f"{total} transfers to {endpoint} with {min(args.concurrency, total)} clients "
          f"in {elapsed:.2f} s: {total / elapsed:.1f} requests/s")
    print("answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(run.kinds.items())))
    if run.latencies:
        print("latency: " + ", ".join(f"p{p} {ms(percentile(run.latencies, p))}" for p in (50, 95, 99)))
    if process_note:
        print(process_note)
    print(f"acknowledged {len(run.acknowledged)}: "
          + ", ".join(f"{s} x{n}" for s, n in sorted(Counter(states.values()).items())))


def hot(args, make_client, main_client):
    """The seed's load: the amounts 1..N from one user to one other."""
    sender, recipient = user_id(args.sender), user_id(args.recipient)
    try:
        before = {uid: main_client.balance(uid) for uid in (sender, recipient)}
    except requests.RequestException as exc:
        sys.exit(f"cannot reach the API at {args.url}: {exc}")
    total = args.transactions
    wanted = total * (total + 1) // 2
    if before[sender] < wanted:
        print(f"note: {args.sender} holds {before[sender]}, less than the {wanted} that "
              f"{total} transfers move; some will fail", file=sys.stderr)
    items = [(sender, recipient, amount) for amount in range(1, total + 1)]
    run, elapsed, process_note, states = load(args, make_client, main_client, items)
    moved = sum(run.acknowledged[t][2] for t, s in states.items() if s == "finished")
    unfinished = Counter(s for s in states.values() if s not in ("finished", "failed"))

    after = {uid: main_client.balance(uid) for uid in (sender, recipient)}
    for _ in range(4):  # a few more reads for a steadier average
        for uid in (sender, recipient):
            main_client.balance(uid)
    diff = {uid: after[uid] - before[uid] for uid in after}
    unknown_total = sum(item[2] for item in run.unknown)
    # Money moved for every finished transfer; a transfer whose answer was
    # lost (a connection error, a 5xx) may or may not have been recorded.
    extra = -diff[sender] - moved
    adds_up = (diff[sender] + diff[recipient] == 0 and 0 <= extra <= unknown_total
               and not unfinished)
    print(f"initial balances: {args.sender} {before[sender]}, {args.recipient} {before[recipient]}")
    print(f"updated balances: {args.sender} {after[sender]} ({diff[sender]:+}), "
          f"{args.recipient} {after[recipient]} ({diff[recipient]:+})")
    report(args, run, elapsed, process_note, states, main_client)
    print(f"moved {moved} by finished transfers"
          + (f" (all {total} finished: N(N+1)/2 = {wanted})" if moved == wanted else ""))
    if run.unknown:
        print(f"{len(run.unknown)} transfers got no answer (total {unknown_total}); "
              f"{extra} of it moved after all")
    if unfinished:
        print(f"NOT finished after processing: {dict(unfinished)}")
    print("balances add up" if adds_up else "BALANCES DO NOT ADD UP")
    return 0 if adds_up else 1


def run_main():
    sys.exit(main())
