"""bin/benchmark --overhead: what the metrics and the background recovery
cost, measured in one run; ``--overhead auth``: what checking API keys
costs, each transfer sent with its sender's own key (as users send them)
against the seed's open API.

Two topologies of its own, alike but for ``metrics.enabled`` and
``recovery.enabled`` (or ``auth.enabled``), are up at once (the idle one's background passes, one
a second, cost next to nothing). Rounds alternate between them, each side
of a round GET /probe_status then immediate transfers, the way the headline
transfers/probe figure is made; the side measured first swaps every round,
so that neither always runs on a warmer machine. Printed: each round's two
ratios, each side's median, and on/off (1.0: free; the target is >= 0.95).
On a machine shared with other work the ratios wander with it; so it also
prints the CPU the app nodes spent per transfer (from /proc), which the
rest of the machine does not change much.
"""
import statistics
import tempfile
from pathlib import Path

#: What each subject turns off on the "off" side, and its name.
SUBJECTS = {
    "metrics": ({"metrics.enabled": "false", "recovery.enabled": "false"},
                "metrics and recovery"),
    "auth": ({"auth.enabled": "false"}, "checking API keys"),
}
TARGET = 0.95


def run(args, counts, say, bench_class, build_data):
    """Measure with ``bench_class`` (timpe.cli.benchmark.Bench) on both
    topologies; return True when every request was answered 2xx."""
    import shutil
    from contextlib import ExitStack

    from timpe.topology import private

    from timpe.auth import client
    from timpe.bench import history

    turned_off, subject = SUBJECTS[args.overhead]
    homes = {side: Path(tempfile.mkdtemp(prefix=f"timpe-bench-{side}-")) for side in ("on", "off")}
    rounds = counts["rounds"]
    say(f"overhead of {subject}: store {args.store}, {rounds} rounds, counts "
        f"{counts['probe'] // rounds} probes and {counts['immediate'] // rounds} transfers "
        f"a side and round, concurrency {args.concurrency}, {args.workers} workers per node")
    clean = True
    with ExitStack() as stack:
        benches = {}
        for side, home in homes.items():
            prepared = private.prepare(home, identifier=f"timpe-bench-{side}",
                                       workers=args.workers, store=args.store,
                                       settings=turned_off if side == "off" else None)
            up = stack.enter_context(private.running(prepared))
            ids, _, _ = build_data(prepared.ini, dict(counts, history=1), lambda line: None)
            keys = history.keys_of(prepared.ini, ids) if args.overhead == "auth" else None
            benches[side] = (bench_class("127.0.0.1", up.ports.haproxy, counts,
                                         args.concurrency, store=args.store,
                                         key=client.operator_key(prepared.ini), keys=keys),
                             ids, _nodes_cpu(up.topology))
            say(f"{side}: haproxy :{up.ports.haproxy}, app :{up.ports.app}, "
                f"app2 :{up.ports.app2}")
        for side, (bench, ids, _) in benches.items():  # warm-up, not counted
            bench.probe(counts["probe"] // 4)
            bench.transfers("warm-up", "/transactions/immediately", counts["immediate"] // 10, ids)
        ratios, cpu = {"on": [], "off": []}, {"on": [], "off": []}
        for r in range(1, rounds + 1):
            order = ("on", "off") if r % 2 else ("off", "on")
            figures = {}
            for side in order:
                bench, ids, nodes_cpu = benches[side]
                probe = bench.probe(max(1, counts["probe"] // rounds))
                spent = nodes_cpu()
                moved = bench.transfers("immediately", "/transactions/immediately",
                                        max(1, counts["immediate"] // rounds), ids)
                cpu[side].append((nodes_cpu() - spent) / max(1, moved.ok()) * 1e6)
                clean = clean and probe.ok() == probe.count and moved.ok() == moved.count
                ratios[side].append(moved.rate / probe.rate)
                figures[side] = f"{probe.rate:.0f} probes/s, {moved.rate:.0f} transfers/s, " \
                                f"ratio {ratios[side][-1]:.3f}, {cpu[side][-1]:.0f} us CPU"
            say(f"round {r}/{rounds}: on {figures['on']}; off {figures['off']}")
    for home in homes.values():
        shutil.rmtree(home, ignore_errors=True)
    on, off = (statistics.median(ratios[s]) for s in ("on", "off"))
    paired = statistics.median(a / b for a, b in zip(ratios["on"], ratios["off"]))
    say(f"transfers/probe with {subject} on {on:.3f}, off {off:.3f} "
        f"(medians of {rounds} rounds)")
    say(f"on/off = {on / off:.3f}, the median of the rounds' on/off {paired:.3f}  "
        f"(target >= {TARGET}: {'met' if on / off >= TARGET else 'MISSED'})")
    cpu_on, cpu_off = (statistics.median(cpu[s]) for s in ("on", "off"))
    say(f"app nodes' CPU per transfer: on {cpu_on:.0f} us, off {cpu_off:.0f} us "
        f"({(cpu_on / cpu_off - 1) * 100:+.1f} %, medians of {rounds} rounds)")
    return clean


def _nodes_cpu(topology):
    """() -> CPU seconds spent so far by both app nodes' process trees."""
    from timpe.bench.cpu import tree_cpu_seconds

    return lambda: sum(tree_cpu_seconds(topology.pid(n)) for n in ("app", "app2"))
