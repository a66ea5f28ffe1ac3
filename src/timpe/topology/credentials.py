"""Credentials of supervisor's HTTP control port, made on first run.

The port listens on 127.0.0.1 only, and still asks for a password: any local
user could otherwise stop the nodes. The secret is written once, readable by
its owner only, and handed to supervisord through its environment, so no
committed file ever holds it.
"""
import secrets
from pathlib import Path

from timpe import private_files

USER = "timpe"


def secret_file(var):
    return Path(var) / "etc" / "supervisor.secret"


def credentials(var):
    """(user, password) for the control port; made on the first call."""
    text = private_files.made_once(secret_file(var),
                                   lambda: f"{USER}:{secrets.token_urlsafe(24)}\n")
    user, _, password = text.strip().partition(":")
    return user, password


def environment(var):
    """What supervisord.conf's %(ENV_...)s expansions need."""
    user, password = credentials(var)
    return {"TIMPE_SUPERVISOR_USER": user, "TIMPE_SUPERVISOR_PASSWORD": password}
