"""bin/u2u_transactions: concurrent transfers through HAProxy, then a check.

Transfers the amounts 1..N from one user to another (elon_musk to
nikola_tesla by default), so N transfers move N(N+1)/2 when all succeed.
It reads no data it does not own and deletes nothing; run it on a topology
no one else is moving these two users' money on, or the check cannot add up.
"""
import argparse
import queue
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import requests

from timpe.bench.percentiles import percentile
from timpe.users.services import user_id

DEFAULT_URL = "http://localhost:9100"
PROCESS_BATCH = 2000


class Run:
    """What the workers record: one entry per transfer attempt."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.kinds = Counter()
        self.acknowledged = {}       # transaction id -> amount (2xx answers)
        self.unknown = []            # amounts whose outcome we cannot know
        self.done = 0

    def record(self, amount, latency, kind, txn_id=None):
        with self.lock:
            self.done += 1
            self.kinds[kind] += 1
            if latency is not None:
                self.latencies.append(latency)
            if txn_id is not None:
                self.acknowledged[txn_id] = amount
            elif not kind.startswith("http 4"):  # a 4xx recorded nothing
                self.unknown.append(amount)


class Client:
    def __init__(self, url, timeout):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
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


def transfer(endpoint, sender, recipient, run):
    def work(client, amount):
        payload = {"sender": sender, "recipient": recipient, "amount": amount}
        started = time.perf_counter()
        try:
            response, body = client.json("POST", endpoint, json=payload)
        except requests.RequestException as exc:
            run.record(amount, None, type(exc).__name__)
            return
        latency = time.perf_counter() - started
        txn_id = (body.get("data") or {}).get("id") if response.ok else None
        run.record(amount, latency, f"http {response.status_code}", txn_id)
    return work


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
    args = parser.parse_args(argv)
    if args.transactions < 1 or args.concurrency < 1:
        parser.error("-t and -c must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    make_client = lambda: Client(args.url, args.timeout)  # noqa: E731
    main_client = make_client()
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

    endpoint = "/transactions/immediately" if args.immediately else "/transactions"
    run = Run()
    work = transfer(endpoint, sender, recipient, run)
    work.client_factory = make_client
    started = time.perf_counter()
    threads = _pool(min(args.concurrency, total), work, range(1, total + 1))
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
    moved = sum(run.acknowledged[t] for t, s in states.items() if s == "finished")
    unfinished = Counter(s for s in states.values() if s not in ("finished", "failed"))

    after = {uid: main_client.balance(uid) for uid in (sender, recipient)}
    for _ in range(4):  # a few more reads for a steadier average
        for uid in (sender, recipient):
            main_client.balance(uid)
    diff = {uid: after[uid] - before[uid] for uid in after}
    unknown_total = sum(run.unknown)
    # Money moved for every finished transfer; a transfer whose answer was
    # lost (a connection error, a 5xx) may or may not have been recorded.
    extra = -diff[sender] - moved
    adds_up = (diff[sender] + diff[recipient] == 0 and 0 <= extra <= unknown_total
               and not unfinished)

    reads = main_client.balance_reads
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    print(f"initial balances: {args.sender} {before[sender]}, {args.recipient} {before[recipient]}")
    print(f"updated balances: {args.sender} {after[sender]} ({diff[sender]:+}), "
          f"{args.recipient} {after[recipient]} ({diff[recipient]:+})")
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
