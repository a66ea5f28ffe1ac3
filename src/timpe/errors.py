"""The API's failures. Each maps to one 4xx/5xx JSON answer in ``timpe.web``."""


class ApiError(Exception):
    status = 400
    headers = {}  # sent with the answer

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    """No key, or one no node knows (RFC 6750: the challenge says which)."""
    status = 401

    def __init__(self, msg, invalid=True):
        super().__init__(msg)
        challenge = 'Bearer realm="TiMPE"'
        self.headers = {"WWW-Authenticate": challenge + (', error="invalid_token"'
                                                         if invalid else "")}


class Forbidden(ApiError):
    """A valid key without the right."""
    status = 403


class NotFound(ApiError):
    status = 404


def unknown_user(uid):
    return NotFound(f"unknown user {uid!r}")


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class InsufficientFunds(ApiError):
    status = 422


class StoreUnavailable(ApiError):
    """The store did not answer; the request may be retried."""
    status = 503


class RowsLost(StoreUnavailable):
    """A row the store acknowledged or showed is gone (a store destroyed and
    filled again under the node, or a write it showed before its primary
    died unreplicated): this request cannot go on from what it read."""


class StoreReplaced(RowsLost):
    """An insert the store refused as made for another store: the tables
    were made again since this process read them (timpe.store.identity)."""
