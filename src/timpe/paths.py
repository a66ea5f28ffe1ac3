"""Where a checkout keeps things. TiMPE runs from its source tree (an
editable or buildout develop install), like the seed: bin/, etc/, var/."""
import os
from pathlib import Path

ROOT = Path(os.environ.get("TIMPE_HOME") or Path(__file__).resolve().parents[2])
ETC = ROOT / "etc"
BIN = ROOT / "bin"
VAR = ROOT / "var"
APP_INI = ETC / "app.ini"
SUPERVISORD_CONF = ROOT / "supervisord.conf"
HAPROXY_CFG = ROOT / "haproxy.cfg"


def default_config():
    """The app ini the operator commands read: $TIMPE_CONFIG or etc/app.ini."""
    return Path(os.environ.get("TIMPE_CONFIG") or APP_INI)
