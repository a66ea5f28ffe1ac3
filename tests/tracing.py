"""strace attached to a running process: the system calls a test counts."""
import contextlib
import os
import shutil
import subprocess
import time

import pytest


def strace():
    found = shutil.which("strace") or ("/usr/bin/strace" if os.path.exists("/usr/bin/strace") else None)
    if found is None:
        pytest.fail("strace is not installed: `make test` installs it (apt-get install strace)")
    return found


@contextlib.contextmanager
def attached(pid, log, calls, poke, size=12):
    """strace every thread of ``pid`` into ``log`` (the ``calls`` given,
    strings cut at ``size``), calling ``poke()`` until it logs something.
    Yields a function that returns the lines logged since the log went
    quiet after attaching."""
    command = [strace(), "-f", "-qq", "-y", "-s", str(size), "-o", str(log),
               "-e", "trace=" + ",".join(calls)]
    for tid in os.listdir(f"/proc/{pid}/task"):
        command += ["-p", tid]
    tracer = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not log.exists() or not log.read_text():  # attached once it logs
            assert tracer.poll() is None, tracer.stderr.read().decode()
            assert time.monotonic() < deadline, "strace did not attach"
            poke()
        # strace writes a line after the call it traced returns, so the
        # pokes' lines can land after the client has its answer: count
        # from the first moment the log stops growing.
        start = _quiet(log, deadline)

        def lines():
            _quiet(log, time.monotonic() + 10)  # the last calls' lines, whole
            tracer.terminate()
            tracer.wait(timeout=10)
            return log.read_bytes()[start:].decode(errors="replace").splitlines()
        yield lines
    finally:
        if tracer.poll() is None:
            tracer.terminate()
            tracer.wait(timeout=10)


def _quiet(log, deadline):
    """The log's size once it has not grown for 0.3 s."""
    size, still = len(log.read_bytes()), 0
    while still < 3:
        assert time.monotonic() < deadline, "strace did not go quiet"
        time.sleep(0.1)
        now = len(log.read_bytes())
        still, size = (still + 1, size) if now == size else (0, now)
    return size
