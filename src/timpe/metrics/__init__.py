"""GET /metrics: the node's figures in Prometheus' text format, through
prometheus_client (docs/metrics.rst).

Turned off with ``metrics.enabled = false``: then nothing is counted, the
store is not wrapped and /metrics answers 404.
"""
from pyramid.settings import asbool


def enabled(settings):
    return asbool(settings.get("metrics.enabled", True))


def includeme(config):
    config.add_route("metrics", "/metrics")
    config.scan("timpe.metrics.views")
    config.registry.metrics = None
    if enabled(config.get_settings()):
        from timpe.metrics.collect import Metrics

        config.registry.metrics = Metrics()
        config.add_tween("timpe.metrics.tween.factory")
