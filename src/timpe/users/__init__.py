"""Users: registration and balances."""
from timpe.users.known import KnownUsers
from timpe.users.services import UserService


def includeme(config):
    config.add_route("users", "/users")
    config.add_route("users_register", "/users/register")
    config.add_route("user", "/users/{id}")
    known = config.registry.known_users = KnownUsers()  # one per app, so one per worker process
    config.add_request_attribute(lambda r: UserService(r.store, known), "users")
    config.scan("timpe.users.views")
