"""bin/benchmark --workloads: the shapes of contention side by side.

* ``uniform``: any two of the benchmark's 64 users;
* ``hot``: the seed's pair, every transfer from one user to one other;
* ``zipf``: 10,000 users, sender and recipient each drawn with a
  probability that falls with their rank as 1 / rank ** 1.1 (a few
  merchants paid by many, a long tail).

Before any is measured, a store that runs on a JVM is loaded with all of
them until its JIT compilers settle (warm_up): on two cores CrateDB's
compile for minutes, and a cold cluster's figures are theirs.

Each runs immediate transfers through HAProxy at the same concurrency
(after a few unmeasured ones; zipf's first pay each of its users once), in
alternating rounds with GET /probe_status, and reports transfers/s, p50
and p99, and per transfer: the store requests the app nodes sent and the
races they lost (read from each node's /metrics before and after), the
rows or keys per store request, and the CPU each process spent (app nodes,
each CrateDB node, HAProxy and supervisord's own from /proc; the load
client from getrusage),
with the share of the store's that its JIT compilers took.
On CrateDB the store's bulk-insert ceiling is also measured for a few
seconds right after each shape, and uniform's and zipf's rates are held
against it: the ceiling of one command has varied twofold from run to run
on this machine (docs/benchmarks.rst), and the figure beside a shape
drifts with it. Then one queued batch is drained by /process, and the
store's whole ceiling is measured in the same run (timpe.bench.ceiling).
"""
import bisect
import itertools
import random
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from timpe.bench import load
from timpe.bench.cpu import compiler_seconds, snapshot
from timpe.users.services import UserService, user_id

SHAPES = ("uniform", "hot", "zipf")
ZIPF_USERS = 10_000
ZIPF_EXPONENT = 1.1
RICH = 10 ** 11


class Zipf:
    """Ranks 0..n-1 drawn with probability proportional to 1 / (rank + 1) ** s."""

    def __init__(self, n, s, rnd):
        weights = [1 / (k ** s) for k in range(1, n + 1)]
        self.cumulative = list(itertools.accumulate(weights))
        self.rnd = rnd

    def draw(self):
        return bisect.bisect(self.cumulative, self.rnd.random() * self.cumulative[-1])


def pairs(shape, ids, count, rnd):
    """``count`` (sender, recipient) of ``shape`` over ``ids``."""
    if shape == "hot":
        return [(ids[0], ids[1])] * count
    if shape == "uniform":
        return [tuple(rnd.sample(ids, 2)) for _ in range(count)]
    zipf, out = Zipf(len(ids), ZIPF_EXPONENT, rnd), []
    while len(out) < count:
        a, b = zipf.draw(), zipf.draw()
        if a != b:
            out.append((ids[a], ids[b]))
    return out


def register_many(store, names, threads=16):
    """Register ``names`` rich, in-process, many at once; skip existing ones."""
    def one(name):
        if store.get("users", (user_id(name),)) is None:
            UserService(store).register(name, RICH)
        return user_id(name)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, names))


def scrape(url):
    """{(name, labels): value} of the counters the workloads report."""
    wanted = ("timpe_store_requests_total", "timpe_store_request_rows_total",
              "timpe_store_lost_races_total")
    found = {}
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(wanted):
                name, _, value = line.rpartition(" ")
                found[name] = found.get(name, 0.0) + float(value)
    return found


class Meter:
    """Counters of the nodes and CPU of the processes, before and after."""

    def __init__(self, node_urls, pids):
        self.node_urls, self.pids = node_urls, pids  # pids: () -> {name: pid}

    def take(self):
        time.sleep(1.5)  # the nodes flush their counters about once a second
        counts = {}
        for url in self.node_urls:
            for name, value in scrape(url).items():
                counts[name] = counts.get(name, 0.0) + value
        pids = {name: pid for name, pid in self.pids().items() if pid}
        jit = {name: compiler_seconds(pid) for name, pid in pids.items()}
        return counts, snapshot(pids), {name: spent for name, spent in jit.items() if spent}

    @staticmethod
    def per_transfer(before, after, transfers):
        counts = {k: after[0].get(k, 0) - before[0].get(k, 0) for k in after[0]}
        requests = sum(v for k, v in counts.items() if k.startswith("timpe_store_requests"))
        rows = sum(v for k, v in counts.items() if k.startswith("timpe_store_request_rows"))
        lost = sum(v for k, v in counts.items() if k.startswith("timpe_store_lost_races"))
        cpu = {name: (after[1][name] - before[1].get(name, 0)) / transfers * 1000
               for name in after[1]}
        kinds = {}  # requests and rows per transfer, by kind of request
        for key, value in counts.items():
            if key.startswith("timpe_store_request"):
                kind = key.partition('kind="')[2].partition('"')[0]
                what = "rows" if "rows" in key else "requests"
                kinds.setdefault(kind, {"requests": 0, "rows": 0})[what] = value / transfers
        return {"requests": requests / transfers, "rows/request": rows / max(requests, 1),
                "lost": lost / transfers, "cpu ms": cpu, "by kind": kinds,
                "jit": jit_share(before, after)}


def jit_share(before, after):
    """Of the CPU the JVMs (the store's nodes) spent between two takes, the
    share their JIT compilers took; None where no process is a JVM."""
    names = after[2]
    if not names:
        return None
    spent = sum(after[1][n] - before[1].get(n, 0) for n in names)
    compiling = sum(after[2][n] - before[2].get(n, 0) for n in names)
    return compiling / spent if spent > 0 else 0.0


#: A JVM's compilers are still warming up while they take more than this
#: share of its CPU: the store is then measured compiling, not serving.
SETTLED = 0.10
#: Rounds running at most SETTLED before the compilers count as settled:
#: one round's share is noisy, and one low round ended warm-ups whose first
#: shape then ran at 13-14 % (docs/benchmarks.rst).
SETTLED_ROUNDS = 2


def settled(shares):
    """Whether the last SETTLED_ROUNDS of ``shares`` (one a round) are all
    at most SETTLED."""
    last = shares[-SETTLED_ROUNDS:]
    return len(last) == SETTLED_ROUNDS and max(last) <= SETTLED


def warm_up(bench, users, meter, say, seconds, ceiling=None):
    """Load every shape, queued transfers and their drain (and the bulk
    inserts of ``ceiling``, as run measures them), in rounds, until the
    store's JIT compilers have settled (``settled``), or ``seconds`` have
    passed (not counted). CrateDB's JVMs compile for minutes under load on
    two cores (docs/benchmarks.rst): measured before, a shape's figures are
    the compilers', not the store's.
    Return the last round's share (None: no JVM, nothing to wait for)."""
    rnd, count = random.Random(11), max(1, bench.counts["immediate"] // 2)
    started, shares = time.monotonic(), []
    for round_ in itertools.count(1):
        before = meter.take()
        if not before[2]:
            return None
        for shape in SHAPES:
            bench.load(f"warm {shape}", [request(bench, *p)
                                         for p in pairs(shape, users[shape], count, rnd)])
        queued = bench.load("warm queue", [bench.transfer("/transactions", *p) for p in
                                           pairs("uniform", users["uniform"], count, rnd)])
        bench.drain(queued.ok())
        if ceiling is not None:
            ceiling(1)
        shares.append(jit_share(before, meter.take()))
        say(f"warm-up round {round_}: the store's JIT compilers took {shares[-1]:.0%} of its "
            f"CPU ({time.monotonic() - started:.0f} s)")
        if settled(shares) or time.monotonic() - started >= seconds:
            return shares[-1]


#: Seconds of the bulk-insert ceiling measured beside each shape.
CEILING_SECONDS = 3


def run(bench, users, meter, say, rounds=4, ceiling=None):
    """Each shape in ``rounds``, then probes; return {shape: figures}.
    ``ceiling(seconds)``: the store's bulk-insert rows/s, measured right
    after each shape (timpe.bench.ceiling.bulk_inserts), or None."""
    rnd = random.Random(7)
    count = bench.counts["immediate"]
    figures = {}
    for shape in SHAPES:
        ids = users[shape]
        warm = pairs(shape, ids, max(1, count // 10), rnd)
        if shape == "zipf":
            # Each user once, as a node that has served a while has seen
            # them all: the figures are its, not those of a node's first
            # sight of each user (a look-up of its own), which a node
            # started just before the run would pay on the tail.
            warm = list(zip(ids[::2], ids[1::2])) + warm
        bench.load(f"{shape} warm", [request(bench, *p) for p in warm])
        runs, probes = [], []
        before = meter.take()
        for _ in range(rounds):
            runs.append(bench.load(shape, [request(bench, *p)
                                           for p in pairs(shape, ids, count // rounds, rnd)]))
        after = meter.take()
        beside = ceiling(CEILING_SECONDS) if ceiling is not None else None
        for _ in range(rounds):
            probes.append(bench.probe(bench.counts["probe"] // rounds))
        merged = load.Result.merged(runs)
        probe = load.Result.merged(probes)
        figures[shape] = {"rate": merged.rate, "p50": merged.percentile(50) * 1000,
                          "p99": merged.percentile(99) * 1000, "kinds": dict(merged.kinds),
                          "probe": probe.rate, "ceiling": beside,
                          **Meter.per_transfer(before, after, merged.count)}
        f = figures[shape]
        say(f"{shape}: {f['rate']:.0f} transfers/s, p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, "
            f"{f['requests']:.2f} store requests and {f['lost']:.3f} lost races per transfer, "
            f"{f['rows/request']:.1f} rows per request, CPU per transfer "
            + ", ".join(f"{n} {ms:.2f} ms" for n, ms in sorted(f["cpu ms"].items()))
            + f" (sum {sum(f['cpu ms'].values()):.2f} ms)"
            + ("" if f["jit"] is None else f", the store's JIT compilers {f['jit']:.0%} of its CPU")
            + ("" if beside is None else f"; bulk ceiling beside it {beside:.0f} rows/s "
               f"({f['rate'] / beside:.3f} of it)")
            + f"; probe {f['probe']:.0f}/s; "
            f"answers {dict(merged.kinds)}; per transfer by kind: "
            + ", ".join(f"{k} {v['requests']:.2f} requests {v['rows']:.2f} rows"
                        for k, v in sorted(f["by kind"].items())))
    return figures


def request(bench, sender, recipient):
    return bench.transfer("/transactions/immediately", sender, recipient)


def table(figures):
    """The figures as an RST table (docs/benchmarks.rst)."""
    names = sorted({n for f in figures.values() for n in f["cpu ms"]})
    head = ["shape", "transfers/s", "p50 ms", "p99 ms", "requests/transfer",
            "rows/request", "lost races/transfer", *[f"CPU {n} ms" for n in names],
            "CPU sum ms"]
    rows = [[shape, f"{f['rate']:.0f}", f"{f['p50']:.1f}", f"{f['p99']:.1f}",
             f"{f['requests']:.2f}", f"{f['rows/request']:.1f}", f"{f['lost']:.3f}",
             *[f"{f['cpu ms'].get(n, 0):.2f}" for n in names],
             f"{sum(f['cpu ms'].values()):.2f}"] for shape, f in figures.items()]
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [head, *rows]:
        lines.append("   * - " + row[0])
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines)


def verdicts(figures, store):
    """The issue's targets, as (name, value, op, limit)."""
    hot, uniform = figures["hot"]["rate"], figures["uniform"]["rate"]
    checks = [("hot/uniform", hot / uniform, ">=", 0.9 if store == "crate" else 0.95)]
    if store == "crate":
        for shape in SHAPES:
            checks.append((f"{shape} transfers/s", figures[shape]["rate"], ">=", 400))
        checks.append(("hot p99 ms", figures["hot"]["p99"], "<=", 1000))
        for shape in ("uniform", "zipf"):
            checks.append((f"{shape} p99 ms", figures[shape]["p99"], "<=", 300))
        checks.append(("hot CPU sum ms", sum(figures["hot"]["cpu ms"].values()), "<=", 5))
        for shape in ("uniform", "zipf"):
            beside = figures[shape].get("ceiling")
            if beside:
                checks.append((f"{shape}/bulk ceiling beside it", figures[shape]["rate"] / beside,
                               ">=", 0.065))
    return checks


def say_verdicts(checks, say):
    for name, value, op, limit in checks:
        met = value >= limit if op == ">=" else value <= limit
        say(f"{name} = {value:.3f}  (target {op} {limit}: {'met' if met else 'MISSED'})")


def median_ratio(figures):
    return statistics.median(f["rate"] / f["probe"] for f in figures.values())
