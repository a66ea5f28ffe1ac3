"""bin/api_key: the operator key and users' keys (docs/api.rst, "Keys and rights").

    show                 print the operator key (made if there is none yet)
    rotate               a new operator key; the old one stops working within
                         a second or two on every node
    rotate USER_ID       a new key for the user, printed once (e.g. for the
                         test users bin/crate_testdata registers)
    revoke USER_ID       the user's key stops working; she keeps her money,
                         and has no key until one is rotated in
"""
import argparse
import sys

from timpe.cli import add_config_argument, open_store


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("command", choices=("show", "rotate", "revoke"))
    parser.add_argument("user", nargs="?", help="a user id (rotate, revoke)")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    from timpe.auth import client, keys
    from timpe.errors import ApiError

    if args.user is None:
        if args.command == "revoke":
            parser.error("revoke needs a user id (the operator key is rotated, not revoked)")
        path = client.key_file(args.config)
        if not path:
            sys.exit(f"{args.config} names no auth.operator_key_file")
        print(keys.ensure_operator_key(path) if args.command == "show"
              else keys.rotate_operator_key(path))
        return
    if args.command == "show":
        parser.error("a user's key is shown once, when it is made: rotate it for a new one")
    from timpe.users.services import UserService

    users = UserService(open_store(args.config))
    try:
        if args.command == "rotate":
            print(users.rotate_key(args.user)["key"])
        else:
            users.revoke_key(args.user)
            print(f"revoked the key of {args.user}")
    except ApiError as exc:
        sys.exit(exc.msg)
