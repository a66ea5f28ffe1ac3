"""Credentials of supervisor's HTTP control port, made on first run.

The port listens on 127.0.0.1 only, and still asks for a password: any local
user could otherwise stop the nodes. The secret is written once, readable by
its owner only, and handed to supervisord through its environment, so no
committed file ever holds it.
"""
import os
import secrets
from pathlib import Path

USER = "timpe"


def secret_file(var):
    return Path(var) / "etc" / "supervisor.secret"


def credentials(var):
    """(user, password) for the control port; made on the first call."""
    path = secret_file(var)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two first runs at once must not write two passwords.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(f"{USER}:{secrets.token_urlsafe(24)}\n")
    user, _, password = path.read_text().strip().partition(":")
    return user, password


def environment(var):
    """What supervisord.conf's %(ENV_...)s expansions need."""
    user, password = credentials(var)
    return {"TIMPE_SUPERVISOR_USER": user, "TIMPE_SUPERVISOR_PASSWORD": password}
