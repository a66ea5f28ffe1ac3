"""Transactions: phase 1 (record), phase 2 (the MPC) and their listing."""
from timpe.store.interfaces import IStore
from timpe.transactions.holds import expiry_from_settings
from timpe.transactions.recovery import Recovery
from timpe.transactions.services import TransactionService
from timpe.transactions.appender import Appender
from timpe.users.services import UserService


def includeme(config):
    # Literal paths first: /transactions/{id} would swallow them.
    config.add_route("transactions", "/transactions")
    config.add_route("transactions_immediately", "/transactions/immediately")
    config.add_route("transactions_process", "/transactions/process")
    config.add_route("transaction", "/transactions/{id}")
    config.add_route("transaction_post", "/transactions/{id}/post")
    config.add_route("transaction_void", "/transactions/{id}/void")
    config.add_route("process", "/process")
    store = config.registry.getUtility(IStore)
    # One per app, so one per worker process: the legs its requests have
    # waiting for a user share rows.
    appender = Appender(store, config.registry.known_users)
    metrics = getattr(config.registry, "metrics", None)  # timpe.metrics, if included
    expiry = expiry_from_settings(config.get_settings())
    config.add_request_attribute(
        lambda r: TransactionService(r.store, r.users, appender, metrics, expiry), "transactions")
    config.registry.recovery = Recovery.from_settings(
        config.get_settings(), store,
        lambda store: TransactionService(store, UserService(store, config.registry.known_users),
                                         appender, metrics, expiry))
    config.scan("timpe.transactions.views")
