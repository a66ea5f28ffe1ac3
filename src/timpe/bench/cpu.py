"""CPU time of a process tree, from /proc (Linux): what a run cost the app
nodes themselves, whatever else the machine's cores were busy with."""
import os
from pathlib import Path

from timpe.bench.rss import children

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
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
