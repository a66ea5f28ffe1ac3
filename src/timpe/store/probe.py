"""GET /probe_store: the node reaches its store.

HAProxy's check of the nodes that take the writes of ledger legs
(timpe.topology.routing): a node that answers /probe_status but cannot
reach its store (cut off from the cluster) would otherwise take every
write and fail each with a 503, while the other node could serve them.
"""
from pyramid.response import Response

from timpe.store.schema import USERS

#: A users key no registration makes (ids are SHA-1 hex): the read finds
#: nothing, and crosses to the store like any other.
PROBE_KEY = "probe"


def probe_store(request):
    request.store.get(USERS.name, (PROBE_KEY,))  # StoreUnavailable: a 503
    return Response("OK", content_type="text/plain")


def includeme(config):
    config.add_route("probe_store", "/probe_store")
    config.add_view(probe_store, route_name="probe_store", request_method="GET")
