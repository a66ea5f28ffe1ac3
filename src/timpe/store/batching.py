"""Batching: the statements one process's greenlets have waiting at the
same time reach the store together.

The first caller to arrive leads: it lets the other greenlets run once, so
that those with a statement to send queue it behind its own, then hands the
whole queue to ``run`` and wakes every caller whose statement ran. A caller
that arrives while a batch is under way waits for the next one.

Each statement keeps its own outcome (rows, or the exception its caller
gets), and no caller hears of its statement before the whole batch is
done: run decides both. Batching changes no statement's meaning: the
statements of one batch run one after the other with no other caller's in
between, as they would have one by one. A caller interrupted while it waits
(a gevent timeout) may still have its statement applied, like a process
killed after it sent one: it knows nothing of the outcome either way.

SQLite stores a batch of writes in one transaction (group commit). Why, on
two app nodes sharing one file: each transaction takes and drops SQLite's
file locks, and makes the other node drop its page cache. Counted with
strace on one node under load, a transfer made 65 fcntl calls; 32 with
group commit, where a batch holds about 6 writes, and a transfer costs the
app nodes about 12 % less CPU (docs/benchmarks.rst). One batch at a time
also keeps a process's writers from all trying SQLite's write lock at once.
CrateDB gets each batch as one bulk request, or one look-up of many keys
(timpe.store.crate). There a request costs the cluster about the same CPU
whatever its rows, so a leader may also linger: where others' statements
are queued behind its own, wait a moment at a time while more keep
arriving, a few milliseconds at most, and send them all in one request.
A statement alone goes at once. SQLite's batches gain nothing from it,
and do not linger.
"""

import collections
import contextlib
import threading
import time

from timpe.errors import StoreUnavailable

_QUEUED = object()


class Job:
    """One queued statement and, once its batch is done, its outcome."""

    __slots__ = ("sql", "params", "outcome")

    def __init__(self, sql, params):
        self.sql, self.params, self.outcome = sql, params, _QUEUED

    @property
    def done(self):
        return self.outcome is not _QUEUED


class Batcher:
    """Queue of one process's statements of one kind. Make it in the
    process that uses it, after any fork and after gevent's patching:
    waiting then yields to the other greenlets (and under real threads it
    blocks as it should).

    ``run(batch)`` runs a list of :class:`Job` and sets each one's
    outcome: its rows, or an exception for that statement's caller.
    ``linger``: (pause, most) in seconds, or None: a leader under gevent
    with others' statements queued behind its own waits ``pause`` again
    and again while more arrive meanwhile, ``most`` in all, before it sends.
    """

    def __init__(self, run, linger=None):
        self._run = run
        self._let_others_run = cooperative_yield()
        self._pause = cooperative_sleep() if linger else None
        self._linger = linger
        self._queue = collections.deque()  # appends and pops need no lock
        self._turn = Turn()  # taken while a batch is under way

    def submit(self, sql, params):
        """Queue one statement; return its rows once its batch is done."""
        job = Job(sql, params)
        self._queue.append(job)
        while not job.done:
            if self._turn.take():
                try:
                    if not job.done:
                        self._lead()
                finally:
                    self._turn.end()
            else:
                self._turn.wait()
        if isinstance(job.outcome, BaseException):
            raise job.outcome
        return job.outcome

    def _lead(self):
        if self._let_others_run is not None:
            self._let_others_run()  # the others queue theirs behind ours
        if self._pause is not None:
            self._gather()
        batch = [self._queue.popleft() for _ in range(len(self._queue))]
        try:
            self._run(batch)
        finally:
            for job in batch:
                if not job.done:  # run was cut short: its caller cannot know
                    job.outcome = StoreUnavailable("store unavailable: statement interrupted")

    def _gather(self):
        """Wait while statements keep arriving (see ``linger``). A statement
        alone in the queue is sent at once: its caller is likely the only
        one (a client alone would pay the wait on every statement)."""
        pause, most = self._linger
        until = time.monotonic() + most
        seen = len(self._queue)
        while seen > 1 and time.monotonic() < until:
            self._pause(pause)
            if len(self._queue) == seen:
                return
            seen = len(self._queue)


def cooperative_sleep():
    """gevent's sleep where gevent has patched this process, else None:
    threads queue their statements while a batch is under way anyway."""
    try:
        from gevent import monkey, sleep
    except ImportError:  # pragma: no cover - gevent is a dependency of the nodes
        return None
    return sleep if monkey.is_module_patched("time") else None


def cooperative_yield():
    """gevent's sleep(0) where gevent has patched this process: the other
    greenlets run until they wait, some of them on a statement. Elsewhere
    none: a thread's sleep(0) is a system call that waits out the timer
    slack (73 us, measured), and threads queue theirs while a batch is
    under way anyway."""
    sleep = cooperative_sleep()
    return None if sleep is None else (lambda: sleep(0))


class Turn:
    """One caller at a time leads (takes the turn); the others wait until
    its turn ends, then look again whether their work was done.

    Waiting is on an event made anew for each turn: under gevent a wait
    and a wake-up of all are a switch each, where a condition variable
    takes and drops several locks a waiter (a batched call 11 µs of CPU
    against 22, docs/benchmarks.rst). Works the same under real threads.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._ended = threading.Event()  # set when the turn under way ends

    def take(self):
        """Take the turn if no one has it; whether this caller now leads."""
        return self._lock.acquire(blocking=False)

    def end(self):
        """End the turn taken, and wake those waiting for it to end."""
        # Released first: a waiter that finds the turn free, or taken by
        # the next leader, never waits on an event no one will set.
        self._lock.release()
        ended, self._ended = self._ended, threading.Event()
        ended.set()

    def wait(self, timeout=None):
        """Wait while someone has the turn, ``timeout`` seconds at most;
        False if it timed out. It may return as a turn ends that is not
        the one under way when it was called: look again, and wait again."""
        ended = self._ended
        return not self._lock.locked() or ended.wait(timeout)

    def taken(self):
        return self._lock.locked()

    @contextlib.contextmanager
    def held(self):
        """The turn, waited for (blocking) and ended on leaving."""
        self._lock.acquire()
        try:
            yield
        finally:
            self.end()
