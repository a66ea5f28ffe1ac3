"""concurrently.each: at once under gevent, one after the other elsewhere;
every item is worked on before an error is raised."""
import json
import subprocess
import sys

import pytest

from timpe import concurrently

_GEVENT = r"""
from gevent import monkey; monkey.patch_all()
import json, time
from timpe import concurrently
started, seen = time.monotonic(), []
def work(i):
    time.sleep(0.2)
    seen.append(i)
    if i == 3:
        raise ValueError("item 3")
    return i * 10
try:
    concurrently.each(work, range(10), width=10)
except ValueError as exc:
    error = str(exc)
took = time.monotonic() - started
print(json.dumps({"took": took, "seen": sorted(seen), "error": error,
                  "values": concurrently.each(lambda i: i + 1, range(5), width=2)}))
"""


def test_under_gevent_the_items_overlap_and_all_are_worked_on():
    out = subprocess.run([sys.executable, "-c", _GEVENT], capture_output=True, text=True,
                         timeout=60, check=True)
    seen = json.loads(out.stdout)
    assert seen["took"] < 1.0  # ten sleeps of 0.2 s, overlapping
    assert seen["seen"] == list(range(10)) and seen["error"] == "item 3"
    assert seen["values"] == [1, 2, 3, 4, 5]  # in the items' order


def test_elsewhere_one_after_the_other_in_order():
    order = []
    assert concurrently.each(lambda i: order.append(i) or i * 2, range(4), width=4) == [0, 2, 4, 6]
    assert order == [0, 1, 2, 3]
    with pytest.raises(ZeroDivisionError):
        concurrently.each(lambda i: 1 // i, [1, 0], width=2)


_NONE_READY = r"""
from gevent import monkey; monkey.patch_all()
import json, time
from timpe import concurrently
def work(i):
    time.sleep(0.01)
    return i
# Turns held elsewhere: no item is ever ready, so each starts one at a time
# and waits for it to end before it looks again.
print(json.dumps(concurrently.each(work, range(5), width=4, ready=lambda i: False)))
"""


def test_under_gevent_items_never_ready_still_all_run():
    out = subprocess.run([sys.executable, "-c", _NONE_READY], capture_output=True, text=True,
                         timeout=30, check=True)
    assert json.loads(out.stdout) == [0, 1, 2, 3, 4]


_ASIDE = r"""
from gevent import monkey; monkey.patch_all()
import json, logging, time
from timpe import concurrently
logging.basicConfig(level=logging.WARNING)
seen = []
def work(i):
    time.sleep(0.1)
    seen.append(i)
    if i == 1:
        raise ValueError("item 1")
for i in range(3):
    concurrently.aside(lambda i=i: work(i))
at_once = list(seen)  # none has run yet: the caller did not wait
time.sleep(0.5)
print(json.dumps({"at_once": at_once, "seen": sorted(seen)}))
"""


def test_aside_under_gevent_the_caller_goes_on_and_errors_are_logged():
    out = subprocess.run([sys.executable, "-c", _ASIDE], capture_output=True, text=True,
                         timeout=60, check=True)
    assert json.loads(out.stdout) == {"at_once": [], "seen": [0, 1, 2]}
    assert "ValueError: item 1" in out.stderr


def test_aside_elsewhere_works_now_and_logs_an_error(caplog):
    seen = []
    concurrently.aside(lambda: seen.append(1))
    assert seen == [1]
    concurrently.aside(lambda: 1 / 0)  # not raised
    assert "ZeroDivisionError" in caplog.text
