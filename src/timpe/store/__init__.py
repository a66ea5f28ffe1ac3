"""The store port: the adapter is picked by the dotted name in ``timpe.store``."""
from pyramid.path import DottedNameResolver

from timpe.store.interfaces import IStore

DEFAULT = "timpe.store.sqlite.SQLiteStore"


def store_from_settings(settings):
    factory = DottedNameResolver().maybe_resolve(settings.get("timpe.store", DEFAULT))
    return factory.from_settings(settings)


def includeme(config):
    store = store_from_settings(config.get_settings())
    config.registry.registerUtility(store, IStore)
    config.add_request_method(lambda request: store, "store", reify=True)
