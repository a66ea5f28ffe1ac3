"""gunicorn's hooks for the app nodes (``gunicorn -c python:timpe.node_hooks``,
see timpe.cli.node).

* The master, on starting, empties the node's PROMETHEUS_MULTIPROC_DIR (set
  per node by supervisord.conf), where each worker keeps its metrics in
  files of its own: figures of workers of an earlier run would be added in.
  Without it and with more than one worker, it makes a temporary one, so
  that a scrape of any worker shows the whole node.
* The master marks each worker that exits dead there (its live gauges go).
* Each worker, once its app is loaded and gevent has patched it, settles
  its garbage collector (timpe.heap), starts the background loop
  (timpe.background) and, on exiting, stops it.

Imports stay inside the hooks: the master must not import what a worker
needs patched by gevent first.
"""
import os

_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):
    import shutil
    import tempfile

    directory = os.environ.get(_MULTIPROC)
    if not directory:
        if server.cfg.workers < 2:
            return
        directory = os.environ[_MULTIPROC] = tempfile.mkdtemp(prefix="timpe-metrics-")
        server._timpe_temporary_metrics = directory
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def on_exit(server):
    directory = getattr(server, "_timpe_temporary_metrics", None)
    if directory:
        import shutil
        shutil.rmtree(directory, ignore_errors=True)


def child_exit(server, worker):
    if os.environ.get(_MULTIPROC):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    from timpe import heap

    registry = getattr(worker.wsgi, "registry", None)
    metrics = getattr(registry, "metrics", None)
    if metrics is not None:
        heap.watch(metrics.gc_seconds.observe)
    heap.settle()
    background = getattr(registry, "background", None)
    if background is not None:
        background.start(alive=lambda: worker.alive, workers=worker.cfg.workers)


def worker_exit(server, worker):
    background = getattr(getattr(worker.wsgi, "registry", None), "background", None)
    if background is not None and not background.stop(timeout=5):
        worker.log.warning("the background pass did not end within 5 s: abandoned")
