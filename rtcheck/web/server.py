"""``rtcheck serve``: the dashboard on a threaded WSGI server, loopback by default.

The request log names method, path and status only: paths hold check ids and
protocol ids, never patient data; query strings (a patient filter) are left out.
"""

from __future__ import annotations

import logging
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from rtcheck.store.database import ResultStore
from rtcheck.web.app import DashboardSettings, create_app

__all__ = ["make_dashboard_server"]

LOG = logging.getLogger("rtcheck.web")


class _RequestLog(WSGIRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        LOG.info("%s %s %s", self.command, self.path.split("?", 1)[0], getattr(code, "value", code))

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        if type == "error":
            LOG.error(message.split("?", 1)[0], *args)


def make_dashboard_server(store: ResultStore, host: str, port: int, settings: DashboardSettings | None = None) -> BaseWSGIServer:
    """A server ready to ``serve_forever()`` (``port`` 0: any free port, see ``server_port``)."""
    return make_server(host, port, create_app(store, settings), threaded=True, request_handler=_RequestLog)
