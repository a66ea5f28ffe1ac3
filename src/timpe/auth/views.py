from pyramid.view import view_config

from timpe.web import success


@view_config(route_name="user_key", request_method="POST")
def rotate(request):
    """A new key for the user; the old one stops working within a second."""
    return success(request, request.users.rotate_key(request.matchdict["id"]))
