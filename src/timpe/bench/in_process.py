"""bin/benchmark --in-process: what a transfer's own work costs one process.

The WSGI application of the nodes' ini is called from greenlets of a
process of its own (gevent-patched like a node's worker), on a SQLite file
of its own: no HTTP server, no HAProxy, no second process writing the
file. Its transfers/s is the most that one process doing every transfer's
whole work could carry, however cheap the HTTP in front of it; held
against GET /probe_status through the stack in the same run, it bounds the
transfers/probe ratio of any topology where one process does that work.
Its CPU per request also counts the child making each request (a JSON
body, a WSGI environ): about 7 µs, measured, of the 600-700 a transfer
costs, so that bound is about 1 % lower than it would be without them.

With ``--processes 2`` two such children share one SQLite file and the
same users, as the two nodes do, and send their transfers at the same
time (the concurrency split between them): the most that the nodes'
two processes could carry with no HTTP at all, one core each.

The parent (:class:`InProcess`) starts ``python -m timpe.bench.in_process
INI HOME USERS CONCURRENCY`` and sends it one command a line (``probe N``,
``transfers N``, ``audit``); each answer is one line of JSON.
"""
# Only light imports here: as __main__ this module patches gevent before
# the rest of timpe is imported (each function imports what it uses).
import json
import subprocess
import sys

#: An answer the child gives when it is ready for commands.
READY = "ready"


class InProcess:
    """The child process, started on entering and stopped on leaving."""

    def __init__(self, ini, home, users, concurrency):
        self._args = [sys.executable, "-m", __name__, str(ini), str(home), str(users),
                      str(concurrency)]
        self._child = None

    def __enter__(self):
        self._child = subprocess.Popen(self._args, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        self.answer()  # READY, once its users are registered
        return self

    def __exit__(self, *exc):
        self._child.stdin.close()
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()

    def run(self, kind, count):
        """``count`` requests of ``kind`` ('probe' or 'transfers'): {"count",
        "ok", "seconds", "cpu", "system"} (CPU seconds of the whole process,
        its threads' included; ``system``: the kernel's part)."""
        self.send(kind, count)
        return self.answer()

    def send(self, kind, count):
        """Start what run does; ``answer`` waits for its outcome."""
        self._child.stdin.write(f"{kind} {count}\n")
        self._child.stdin.flush()

    def audit(self):
        """The audit of its store: {"problems": count, "finished": transfers}."""
        return self.run("audit", 0)

    def answer(self):
        line = self._child.stdout.readline()
        if not line:
            raise RuntimeError(f"the in-process benchmark exited ({self._child.wait()})")
        return json.loads(line)


def run(args, counts, say, bench_class, users, target):
    """Rounds of GET /probe_status through a stack of its own (a
    ``bench_class``, timpe.cli.benchmark.Bench), then immediate transfers
    between ``users`` users and probes called in the children
    (``args.processes`` of them, on one file); print the transfers/probe
    they reach at best against ``target`` (op, value); return (every answer
    2xx, their store sound)."""
    import contextlib
    import shutil
    import statistics
    import tempfile
    from pathlib import Path

    from timpe.bench import load
    from timpe.topology import private as private_topology

    home = Path(tempfile.mkdtemp(prefix="timpe-bench-"))
    rounds, per_round = counts["rounds"], {k: max(1, counts[k] // counts["rounds"])
                                           for k in ("probe", "immediate")}
    many = args.processes
    who = "one process" if many == 1 else f"{many} processes on one file"
    where = f"in {who}"
    say(f"in-process benchmark in {home}: counts {per_round} a round, {rounds} rounds, "
        f"concurrency {args.concurrency}, {many} process{'es' if many > 1 else ''}")
    prepared = private_topology.prepare(home, identifier="timpe-bench", workers=args.workers)
    stack, transfers, probes = [], [], []
    with private_topology.running(prepared) as running, contextlib.ExitStack() as children:
        # One after the other: the first registers the users, the others find them.
        own = [children.enter_context(InProcess(prepared.ini, home, users,
                                                max(1, args.concurrency // many)))
               for _ in range(many)]
        bench = bench_class("127.0.0.1", running.ports.haproxy, counts, args.concurrency)
        bench.probe(counts["probe"] // 4)  # warm-ups, not counted
        together(own, "probe", counts["probe"] // 4)
        together(own, "transfers", counts["immediate"] // 10)
        for r in range(1, rounds + 1):
            stack.append(bench.probe(per_round["probe"]))
            transfers.append(together(own, "transfers", per_round["immediate"]))
            probes.append(together(own, "probe", per_round["probe"]))
            say(f"round {r}/{rounds}: GET /probe_status through the stack {stack[-1].rate:.0f}/s; "
                f"{where} without HTTP, transfers {_rate(transfers[-1]):.0f}/s, "
                f"probes {_rate(probes[-1]):.0f}/s")
        audited = own[0].audit()
    for name, runs in (("an immediate transfer", transfers), ("a probe", probes)):
        count = sum(run["count"] for run in runs)
        say(f"{where} without HTTP, {name}: "
            f"{statistics.median(_rate(run) for run in runs):.0f}/s (median), "
            f"CPU {sum(run['cpu'] for run in runs) / count * 1e6:.0f} us "
            f"({sum(run['system'] for run in runs) / count * 1e6:.0f} us of it the kernel's)")
    ceiling = statistics.median(_rate(t) / p.rate for t, p in zip(transfers, stack))
    op, target = target
    say(f"GET /probe_status through the stack: {load.Result.merged(stack).rate:.0f}/s; "
        f"{who} doing every transfer's work reach{'es' if many == 1 else ''} transfers/probe "
        f"{ceiling:.3f} at most, before any HTTP (the median of {rounds} rounds; the target "
        f"{op} {target} is {'within' if ceiling >= target else 'beyond'} it)")
    say(f"audit of the in-process store: {audited['problems']} problems, "
        f"{audited['finished']} transfers finished")
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    clean = (all(r.ok() == r.count for r in stack)
             and all(run["ok"] == run["count"] for run in transfers + probes))
    return clean, audited["problems"] == 0


def together(children, kind, count):
    """``count`` requests of ``kind`` in each of ``children`` at the same
    time, as one run: their counts and CPU added up, over the longest of
    their times."""
    for child in children:
        child.send(kind, count)
    runs = [child.answer() for child in children]
    return {"count": sum(r["count"] for r in runs), "ok": sum(r["ok"] for r in runs),
            "seconds": max(r["seconds"] for r in runs),
            "cpu": sum(r["cpu"] for r in runs), "system": sum(r["system"] for r in runs)}


def _rate(run):
    return run["count"] / run["seconds"]


def _serve(ini, home, users, concurrency):
    import io
    import random
    import resource
    import time
    from pathlib import Path

    import gevent

    from timpe import main
    from timpe.audit import audit
    from timpe.auth import client
    from timpe.bench import history
    from timpe.cli import load_settings
    from timpe.store import DEFAULT
    from timpe.store.interfaces import IStore
    from timpe.store.schema import TRANSACTIONS
    from timpe.store.sqlite import SQLiteStore
    from timpe.transactions.protocol import FINISHED

    settings = {**load_settings(ini), "timpe.store": DEFAULT,
                "sqlite.path": str(Path(home) / "in-process.sqlite")}
    store = SQLiteStore.from_settings(settings)
    store.setup()
    ids = history.register(store, users)
    store.close()
    app = main({}, **settings)
    authorization = client.headers(client.operator_key(ini))["Authorization"]
    rnd = random.Random()  # children side by side draw different pairs

    def call(method, path, body=b""):
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                   "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
                   "HTTP_AUTHORIZATION": authorization}
        status = []
        for _ in app(environ, lambda s, headers, exc_info=None: status.append(s)):
            pass
        return status[0][:1] == "2"

    def transfer():
        sender, recipient = rnd.sample(ids, 2)
        return call("POST", "/transactions/immediately", json.dumps(
            {"sender": sender, "recipient": recipient, "amount": 0.01}).encode())

    kinds = {"probe": lambda: call("GET", "/probe_status"), "transfers": transfer}

    def measure(request, count):
        left, ok = [count], [0]

        def client_():
            while left[0] > 0:
                left[0] -= 1
                answered = request()  # yields: add once it is back
                ok[0] += answered
        started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        gevent.joinall([gevent.spawn(client_) for _ in range(concurrency)])
        after, seconds = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
        system = after.ru_stime - before.ru_stime
        return {"count": count, "ok": ok[0], "seconds": seconds, "system": system,
                "cpu": after.ru_utime - before.ru_utime + system}

    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    answer(READY)
    for line in sys.stdin:
        kind, count = line.split()
        if kind == "audit":
            store = app.registry.getUtility(IStore)
            finished = store.count_by(TRANSACTIONS.name, "state").get(FINISHED, (0,))[0]
            answer({"problems": audit(store)["problem_count"], "finished": finished})
        else:
            answer(measure(kinds[kind], int(count)))


if __name__ == "__main__":
    import warnings

    from gevent import monkey

    monkey.patch_all()  # as a node's gevent worker is, before anything else
    # Pyramid's import of pkg_resources warns; this process's stderr is the user's terminal.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
