"""bin/crate_setup, bin/crate_cleanup, bin/crate_testdata, bin/audit: the
store's tables, the seed's test users and the check of the invariants, on
whichever store the ini configures."""
import argparse
import sys

from timpe.cli import add_config_argument, open_store
from timpe.errors import Conflict, StoreUnavailable
from timpe.money import UNIT

#: The seed's four test users (etc/crate_testdata.sh had four). The load
#: tool moves money from elon_musk to nikola_tesla, so they hold plenty.
TEST_USERS = (
    ("elon_musk", 100_000_000),
    ("nikola_tesla", 100_000_000),
    ("marie_curie", 10_000),
    ("alan_turing", 10_000),
)


def _parser(description):
    parser = argparse.ArgumentParser(description=description)
    add_config_argument(parser)
    return parser


def setup(argv=None):
    args = _parser("Create the store's tables and reserve the prepared nicknames of users "
                   "registered before (RFC 8265). Safe to re-run: destroys nothing."
                   ).parse_args(argv)
    from timpe.users import legacy

    store = open_store(args.config)
    created, reserved = legacy.setup(store)
    if created:
        print(f"created tables on {store.name}: {', '.join(created)}")
    else:
        print(f"all tables exist on {store.name}; nothing changed")
    if reserved:
        print(f"reserved the prepared nicknames of {reserved} users registered before")


def cleanup(argv=None):
    parser = _parser("Drop every table and ALL data of the store.")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    store = open_store(args.config)
    if not args.yes:
        if not sys.stdin.isatty():
            sys.exit("crate_cleanup deletes all data: pass --yes to confirm")
        answer = input(f"Delete ALL data of the {store.name} store ({args.config})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            sys.exit("aborted; nothing deleted")
    store.drop()
    print(f"dropped all tables of the {store.name} store")


def testdata(argv=None):
    args = _parser("Register the seed's four test users. Re-running skips existing ones.").parse_args(argv)
    from timpe.users.services import UserService

    users = UserService(open_store(args.config))
    for nickname, balance in TEST_USERS:
        try:
            user = users.register(nickname, balance * UNIT)
            print(f"registered {nickname} ({user['id']}) with balance {balance}")
        except Conflict:
            print(f"{nickname} is registered already; left as it is")
        except StoreUnavailable as exc:
            sys.exit(f"{exc}\n(have the tables been created? run bin/crate_setup)")


#: The audit's problems printed; the others are counted.
AUDIT_SHOWN = 10


def audit(argv=None):
    parser = _parser("Check the store's invariants from its rows: every ledger without a gap, "
                     "each running balance the sum of its legs and never below zero, each "
                     "leg matching its transfer, money conserved. Run it while no client "
                     "writes: transfers left under way are money in flight. Exits 1 on a "
                     "problem, 2 when the store cannot be read.")
    parser.add_argument("--at-rest", action="store_true",
                        help="every transfer must have come to rest (finished, failed, voided "
                             "or held): with no client, after POST /process")
    args = parser.parse_args(argv)
    try:
        sound = audit_store(args.config, print, quiescent=args.at_rest)
    except StoreUnavailable as exc:  # not audited: no verdict, exit 2
        print(f"{exc}\n(have the tables been created? run bin/crate_setup)", file=sys.stderr)
        sys.exit(2)
    if not sound:
        sys.exit(1)


def audit_store(config, say, quiescent=True):
    """Check the invariants, telling ``say``; True when there is no problem.
    Unless ``quiescent``, transfers may be left under way: their legs are
    money in flight."""
    from timpe.audit import audit as check

    store = open_store(config)
    try:
        report = check(store, require_terminal=quiescent)
    finally:
        store.close()
    say(f"audit: {report['problem_count']} problems, initial total "
        f"{report['initial_total']}, balances {report['balance_total']}, "
        f"held {report['held_total']}, in flight {report['in_flight']}")
    for problem in report["problems"][:AUDIT_SHOWN]:
        say(f"  {problem}")
    if report["written_meanwhile"]:
        say(f"audit: {report['written_meanwhile']} of the rows read were written while the "
            "audit ran, and its problems may be theirs: run it again with no client writing")
    return not report["problems"]
