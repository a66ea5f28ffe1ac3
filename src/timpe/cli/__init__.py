"""The operator commands of bin/ (console scripts ``timpe-*``, see setup.py)."""
from pathlib import Path

from timpe.paths import default_config


def add_config_argument(parser):
    parser.add_argument(
        "--config", type=Path, default=default_config(),
        help="the app's PasteDeploy ini (default: $TIMPE_CONFIG or etc/app.ini)")


def load_settings(config):
    """The [app:main] settings of ``config``, as the app node sees them."""
    from paste.deploy.loadwsgi import appconfig

    path = Path(config).resolve()
    if not path.is_file():
        raise SystemExit(f"no such config file: {path}")
    return dict(appconfig(f"config:{path}"))


def open_store(config):
    from timpe.store import store_from_settings

    return store_from_settings(load_settings(config))
