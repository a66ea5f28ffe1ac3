"""bin/crash: an SQL shell on the configured store.

On CrateDB it is the real ``crash`` shell (PyPI package ``crash``) pointed
at ``crate.hosts``. On the embedded SQLite store it is a small shell of its
own that reads statements from the arguments, a pipe or a prompt:

    echo 'SELECT * FROM users' | bin/crash
"""
import argparse
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from timpe.cli import add_config_argument, load_settings
from timpe.store import store_from_settings


def external_shell(store, settings):
    """argv of the store's own shell, or None to use the built-in one.

    The hook for adapters that have a shell of their own: CrateDB's is crash.
    """
    if store.name != "crate":
        return None
    crash = shutil.which("crash", path=str(Path(sys.executable).parent)) or shutil.which("crash")
    if crash is None:
        sys.exit("the CrateDB shell is missing: pip install 'timpe[crate]' (make run STORE=crate does)")
    hosts = settings.get("crate.hosts", "localhost:4200").split()
    return [crash, "--hosts", *hosts]


def statements(lines):
    """Yield complete statements from ``lines``; a last one may lack its ';'."""
    buffer = ""
    for line in lines:
        buffer += line if line.endswith("\n") else line + "\n"
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def table(columns, rows):
    """Rows as crash prints them: a boxed table."""
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"
    return "\n".join([rule, line(columns), rule, *map(line, cells), rule])


def run(store, statement, out=sys.stdout):
    started = time.perf_counter()
    columns, rows = store.sql(statement.rstrip(";").strip())
    took = time.perf_counter() - started
    verb = statement.split(None, 1)[0].upper()
    if columns:
        print(table(columns, rows), file=out)
        print(f"{verb} {len(rows)} row{'s' if len(rows) != 1 else ''} in set ({took:.3f} sec)", file=out)
    else:
        print(f"{verb} OK ({took:.3f} sec)", file=out)


def _prompt():
    try:
        import readline  # noqa: F401  (line editing for input())
    except ImportError:
        pass
    while True:
        try:
            yield input("timpe> ")
        except EOFError:
            print()
            return


def main(argv=None):
    parser = argparse.ArgumentParser(description="SQL shell on the configured store.")
    add_config_argument(parser)
    parser.add_argument("-c", "--command", action="append", default=[],
                        help="run this statement and exit (repeatable)")
    args, rest = parser.parse_known_args(argv)
    settings = load_settings(args.config)
    store = store_from_settings(settings)

    shell = external_shell(store, settings)
    if shell is not None:
        shell += [arg for c in args.command for arg in ("-c", c)] + rest
        os.execv(shell[0], shell)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    interactive = not args.command and sys.stdin.isatty()
    if args.command:
        source = args.command
    elif interactive:
        print(f"TiMPE SQL shell on {store.name} ({settings.get('sqlite.path', '')}); "
              "end statements with ';', quit with Ctrl-D")
        source = _prompt()
    else:
        source = sys.stdin
    failed = 0
    for statement in statements(source):
        try:
            run(store, statement)
        except Exception as exc:  # an operator's shell reports and goes on
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    store.close()
    sys.exit(1 if failed and not interactive else 0)
