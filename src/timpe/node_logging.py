"""gunicorn's logger for the app nodes.

gunicorn turns access logging on whenever a logging config is present, and
``--paste etc/app.ini`` is one: every request then builds an access record
that no handler prints (about 7 % of a worker's time, measured with py-spy
under load). Here an access log is kept only when one was asked for
(``bin/app --access-log``).
"""
from gunicorn.glogging import Logger


class AccessLogWhenAsked(Logger):
    def _compute_access_log_enabled(self):
        return bool(self.cfg.accesslog)
