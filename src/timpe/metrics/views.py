import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from pyramid.response import Response
from pyramid.view import view_config

from timpe.errors import NotFound


def exposition():
    """Every metric of this node in the text format: with
    PROMETHEUS_MULTIPROC_DIR, those of all its workers added up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@view_config(route_name="metrics", request_method="GET")
def metrics(request):
    collected = request.registry.metrics
    if collected is None:
        raise NotFound("metrics are turned off on this node (metrics.enabled = false)")
    collected.flush()
    return Response(body=exposition(), headerlist=[("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)])
