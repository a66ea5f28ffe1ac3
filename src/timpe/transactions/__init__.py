"""Transactions: phase 1 (record), phase 2 (the MPC) and their listing."""
from timpe.transactions.services import TransactionService


def includeme(config):
    # Literal paths first: /transactions/{id} would swallow them.
    config.add_route("transactions", "/transactions")
    config.add_route("transactions_immediately", "/transactions/immediately")
    config.add_route("transactions_process", "/transactions/process")
    config.add_route("transaction", "/transactions/{id}")
    config.add_route("process", "/process")
    config.add_request_attribute(lambda r: TransactionService(r.store, r.users), "transactions")
    config.scan("timpe.transactions.views")
