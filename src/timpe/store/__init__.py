"""The store port: the adapter is picked by the dotted name in ``timpe.store``."""
import importlib

from timpe.store.interfaces import IStore

DEFAULT = "timpe.store.sqlite.SQLiteStore"


def store_from_settings(settings):
    return store_class(settings).from_settings(settings)


def store_class(settings):
    """The adapter ``timpe.store`` names (not yet opened)."""
    dotted = settings.get("timpe.store", DEFAULT)
    module, _, name = dotted.replace(":", ".").rpartition(".")
    try:
        factory = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        # The CrateDB adapter's client is an extra (setup.py).
        raise ValueError(f"timpe.store = {dotted!r} cannot be imported ({exc}): "
                         "for CrateDB, pip install 'timpe[crate]'") from exc
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"timpe.store = {dotted!r} names no store adapter: {exc}") from exc
    return factory


def includeme(config):
    from pyramid.tweens import INGRESS

    store = store_from_settings(config.get_settings())
    metrics = getattr(config.registry, "metrics", None)  # timpe.metrics, included first
    if metrics is not None:
        store = metrics.measured(store)
    config.registry.registerUtility(store, IStore)
    config.include("timpe.store.probe")
    config.add_request_attribute(lambda request: store, "store")
    # Under the metrics' tween, where there is one: its times include the sync.
    config.add_tween("timpe.store.durability.factory",
                     under=("timpe.metrics.tween.factory", INGRESS))
