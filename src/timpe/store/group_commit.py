"""Group commit: the writes one process's greenlets have waiting at the same
time reach the store together, in one transaction.

The first writer to arrive leads: it lets the other greenlets run once, so
that those with a write to make queue it behind its own, then hands the
whole queue to ``run`` and wakes every writer whose statement ran. A writer
that arrives while a batch is being written waits for the next one.

Each write keeps its own outcome (rows, or the exception its caller gets),
and no caller hears of its write before the whole batch is stored: run
decides both. Grouping changes no write's meaning: statements of one batch
run one after the other with no other writer in between, as they would
have one by one. A writer interrupted while it waits (a gevent timeout)
may still have its write stored, like a process killed after it sent a
statement: its caller knows nothing of the outcome either way.

Why (two app nodes on one SQLite file): each transaction takes and drops
SQLite's file locks, and makes the other node drop its page cache. Counted
with strace on one node under load, a transfer made 65 fcntl calls; 32 with
group commit, where a batch holds about 6 writes, and a transfer costs the
app nodes about 12 % less CPU (docs/benchmarks.rst). One batch at a time
also keeps a process's writers from all trying SQLite's write lock at once.
"""
import collections
import threading

from timpe.errors import StoreUnavailable

_QUEUED = object()


class Write:
    """One queued statement and, once its batch is done, its outcome."""

    __slots__ = ("sql", "params", "outcome")

    def __init__(self, sql, params):
        self.sql, self.params, self.outcome = sql, params, _QUEUED

    @property
    def done(self):
        return self.outcome is not _QUEUED


class GroupCommit:
    """Queue of one process's writes. Make it in the process that uses it,
    after any fork and after gevent's patching: waiting then yields to the
    other greenlets (and under real threads it blocks as it should).

    ``run(batch)`` stores a list of :class:`Write` and sets each one's
    outcome: its rows, or an exception for that write's caller.
    """

    def __init__(self, run):
        self._run = run
        self._let_others_run = _cooperative_yield()
        self._queue = collections.deque()  # appends and pops need no lock
        self._leading = threading.Lock()   # held while a batch is stored
        self._done = threading.Condition()  # followers wait here for theirs
        self._waiting = 0

    def write(self, sql, params):
        """Queue one statement; return its rows once its batch is stored."""
        write = Write(sql, params)
        self._queue.append(write)
        while not write.done:
            if self._leading.acquire(blocking=False):
                try:
                    if not write.done:
                        self._lead()
                finally:
                    self._leading.release()
                    # A follower counts itself before it checks the lock, so
                    # one that saw it held is counted here: no lost wake-up.
                    if self._waiting:
                        with self._done:
                            self._done.notify_all()
            else:
                with self._done:
                    self._waiting += 1
                    while not write.done and self._leading.locked():
                        self._done.wait()
                    self._waiting -= 1
        if isinstance(write.outcome, BaseException):
            raise write.outcome
        return write.outcome

    def _lead(self):
        if self._let_others_run is not None:
            self._let_others_run()  # the others queue their writes behind ours
        batch = [self._queue.popleft() for _ in range(len(self._queue))]
        try:
            self._run(batch)
        finally:
            for write in batch:
                if not write.done:  # run was cut short: its caller cannot know
                    write.outcome = StoreUnavailable("store unavailable: write interrupted")


def _cooperative_yield():
    """gevent's sleep(0) where gevent has patched this process: the other
    greenlets run until they wait, some of them on a write. Elsewhere none:
    a thread's sleep(0) is a system call that waits out the timer slack
    (73 us, measured), and threads queue their writes while a batch is
    stored anyway."""
    try:
        from gevent import monkey, sleep
    except ImportError:  # pragma: no cover - gevent is a dependency of the nodes
        return None
    return (lambda: sleep(0)) if monkey.is_module_patched("time") else None
