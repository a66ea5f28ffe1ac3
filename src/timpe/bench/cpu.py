"""CPU time of a process tree, from /proc (Linux): what a run cost the app
nodes themselves, whatever else the machine's cores were busy with."""
import os
import resource
from pathlib import Path

from timpe.bench.rss import children

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    return _stat_seconds(Path(f"/proc/{pid}"))


def _stat_seconds(entry):
    """User and system CPU of a /proc process or task entry; 0 once gone."""
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()  # the name (2nd field) may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def tree_cpu_seconds(pid):
    """User and system CPU of ``pid`` and its descendants (a gunicorn
    master and its workers), in seconds."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu_seconds(current)
        todo.extend(children(current))
    return total


#: The process that runs every other: its own CPU (copying their logs,
#: watching them) is counted, not its tree's.
SUPERVISOR = "supervisord"


def snapshot(pids):
    """{name: CPU seconds so far} of each process tree of ``pids`` ({name:
    pid}, a pid of None left out; supervisord alone), and of this process
    (the load client) as ``client``."""
    spent = {name: (cpu_seconds if name == SUPERVISOR else tree_cpu_seconds)(pid)
             for name, pid in pids.items() if pid}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent["client"] = usage.ru_utime + usage.ru_stime
    return spent


#: HotSpot's JIT compiler threads, as /proc names them (15 characters).
COMPILERS = ("C1 CompilerThre", "C2 CompilerThre")


def compiler_seconds(pid):
    """User and system CPU of ``pid``'s JIT compiler threads (a JVM's
    HotSpot C1 and C2), in seconds; 0 for a process that has none."""
    total = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if name in COMPILERS:
            total += _stat_seconds(task)
    return total
