"""API keys and rights (docs/api.rst, "Keys and rights").

Settings: ``auth.enabled`` (default true; false is the seed's open API, for
a trusted network only) and ``auth.operator_key_file``, the operator key's
file (``make run`` makes ``var/etc/operator.key``).
"""


def includeme(config):
    # Imported here: the clients import timpe.auth.keys without Pyramid.
    from pyramid.settings import asbool

    from timpe.auth.identity import Authenticator, OperatorKey
    from timpe.auth.rights import authenticate, authorize
    from timpe.store.interfaces import IStore

    settings = config.get_settings()
    registry = config.registry
    registry.authenticator = None
    if asbool(settings.get("auth.enabled", True)):
        registry.authenticator = Authenticator(
            registry.getUtility(IStore), OperatorKey(settings.get("auth.operator_key_file")))
    # authenticate before the body is read, authorize once it is validated.
    config.add_view_deriver(authenticate, under="decorated_view", over="validate_request")
    config.add_view_deriver(authorize, under="validate_request", over="rendered_view")
    config.add_route("user_key", "/users/{id}/key")
    config.scan("timpe.auth.views")
