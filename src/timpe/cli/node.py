"""bin/app (one app node), bin/supervisord and bin/supervisorctl.

Keep the imports light: gunicorn's gevent worker monkey-patches after the
fork, and modules imported here before that would miss the patch.
"""
import argparse
import sys

from timpe.paths import SUPERVISORD_CONF, VAR, default_config


def gunicorn_argv(config, port, workers, access_log=False):
    """The one command line every app node runs (supervisor's and bin/app's)."""
    argv = [
        "gunicorn", "--paste", str(config),
        "--bind", f"127.0.0.1:{port}",
        # SQLite calls block the process's event loop, so concurrency comes
        # from worker processes; gevent keeps many idle connections cheap.
        # gunicorn's gevent worker, with gevent's HTTP server (timpe.node_worker).
        "--worker-class", "timpe.node_worker.Worker", "--workers", str(workers),
        "--worker-connections", "200",
        # A worker waiting on SQLite's busy timeout (30 s) is not hung.
        "--timeout", "60", "--graceful-timeout", "10",
        "--name", f"timpe-app-{port}",
        # supervisor controls the node; two masters must not share one socket.
        "--no-control-socket",
        "--logger-class", "timpe.node_logging.AccessLogWhenAsked",
        # The metrics' directory, the background loop (recovery): its hooks.
        "--config", "python:timpe.node_hooks",
    ]
    if access_log:
        argv += ["--access-logfile", "-"]
    return argv


def app(argv=None):
    from timpe.topology.render import WORKERS

    parser = argparse.ArgumentParser(
        description="Run one app node in the foreground (gunicorn, gevent workers). "
                    "Under supervisor, stop its node first: bin/supervisorctl stop app")
    parser.add_argument("--config", default=default_config(), help="PasteDeploy ini")
    parser.add_argument("--port", type=int, default=9210)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--access-log", action="store_true", help="log each request to stdout")
    args = parser.parse_args(argv)

    from gunicorn.app.wsgiapp import run

    sys.argv = gunicorn_argv(args.config, args.port, args.workers, args.access_log)
    run()


def _with_config(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not {"-c", "--configuration"} & set(argv) and not any(a.startswith("--configuration=") for a in argv):
        argv = ["-c", str(SUPERVISORD_CONF), *argv]
    return argv


def supervisord(argv=None):
    from supervisor import supervisord as daemon

    _supervisor_env()
    for sub in ("log", "run"):
        (VAR / sub).mkdir(parents=True, exist_ok=True)
    daemon.main(_with_config(argv))


#: supervisorctl's exit status where it cannot reach supervisord (LSB: unknown).
NOT_RUNNING = 4


def supervisorctl(argv=None):
    import os

    from supervisor import supervisorctl as ctl
    from supervisor.options import ClientOptions

    _supervisor_env()
    argv = _with_config(argv)
    options = ClientOptions()  # read here to look at the socket; main reads its own
    options.realize(argv, doc=ctl.__doc__)
    # Where supervisord was never started (or is stopped) its socket is not
    # there; supervisorctl would only print the socket's URL and "no such file".
    scheme, _, path = options.serverurl.partition("://")
    if scheme == "unix" and not os.path.exists(path):
        print(f"bin/supervisorctl: supervisord is not running ({path} is not there); "
              "start everything with make run", file=sys.stderr)
        sys.exit(NOT_RUNNING)
    ctl.main(argv)


def _supervisor_env():
    """What supervisord.conf expands: the nodes' ini and the control port's login."""
    import os

    from timpe.topology import credentials

    os.environ["TIMPE_CONFIG"] = str(default_config())
    os.environ.update(credentials.environment(VAR))
