"""The API's failures. Each maps to one 4xx/5xx JSON answer in ``timpe.web``."""


class ApiError(Exception):
    status = 400

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


class BadRequest(ApiError):
    status = 400


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
