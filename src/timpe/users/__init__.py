"""Users: registration and balances."""
from timpe.users.known import KnownUsers
from timpe.users.services import UserService
from timpe.users.statements import Statements


def includeme(config):
    config.add_route("users", "/users")
    config.add_route("users_register", "/users/register")
    config.add_route("user", "/users/{id}")
    config.add_route("user_transactions", "/users/{id}/transactions")
    known = config.registry.known_users = KnownUsers()  # one per app, so one per worker process
    config.add_request_attribute(lambda r: UserService(r.store, known), "users")
    config.add_request_attribute(lambda r: Statements(r.users), "statements")
    config.scan("timpe.users.views")
