"""A worker's garbage collector once its app is loaded (timpe.heap): what
was loaded is never walked again, and every collection is timed."""
import subprocess
import sys

SCRIPT = """
import gc
from timpe import main, heap
from tests.spec import app_settings

app = main({}, **app_settings(%(db)r))
before = len(gc.get_objects())
seen = []
heap.watch(lambda labels, seconds: seen.append((labels, seconds)))
heap.settle()
assert gc.get_threshold() == heap.THRESHOLDS, gc.get_threshold()
frozen = gc.get_freeze_count()
walked = len(gc.get_objects())  # what a full collection walks now
print(before, frozen, walked)
assert frozen > 0.9 * before and walked < 0.05 * frozen, (before, frozen, walked)
assert [labels for labels, _ in seen] == [("2",)] and seen[0][1] > 0, seen
gc.collect(1)
assert [labels for labels, _ in seen] == [("2",), ("1",)], seen
"""


def test_settle_freezes_the_loaded_app_and_watch_times_collections(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT % {"db": str(tmp_path / "s.sqlite")}],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
