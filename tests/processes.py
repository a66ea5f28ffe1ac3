"""Real OS processes released at once, for the tests of races."""
import multiprocessing


def race(target, argss, start_method="spawn"):
    """Run ``target(barrier, results, *args)`` in one process per args tuple,
    all released by one barrier; return what each put on ``results``."""
    ctx = multiprocessing.get_context(start_method)
    barrier, results = ctx.Barrier(len(argss)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(barrier, results, *args)) for args in argss]
    for p in procs:
        p.start()
    outcome = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return outcome


def stop_gently(node, timeout):
    """SIGTERM a process started in a group of its own; if it is not gone
    within ``timeout`` s, kill the group and fail."""
    import os
    import signal
    import subprocess
    node.send_signal(signal.SIGTERM)
    try:
        node.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(node.pid, signal.SIGKILL)
        raise
