"""TiMPE: user-to-user transfers on a shared-nothing, eventually consistent store."""


def main(global_config, **settings):
    """The WSGI application (PasteDeploy entry point ``egg:timpe``)."""
    # Imported here: the bin/ commands import timpe without needing Pyramid.
    from pyramid.config import Configurator

    with Configurator(settings=settings) as config:
        config.include("timpe.web")
        config.include("timpe.validation")
        config.include("timpe.openapi")
        config.include("timpe.metrics")  # before the store, which it measures
        config.include("timpe.store")
        config.include("timpe.users")
        config.include("timpe.transactions")
        config.include("timpe.auth")  # after every route: the rights cover them all
        config.include("timpe.background")
        return config.make_wsgi_app()
