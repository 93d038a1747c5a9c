"""The review dashboard of the results store (``rtcheck serve``): Flask, server-rendered pages.

>>> server = make_dashboard_server(open_store("rtcheck.sqlite"), "127.0.0.1", 8080)   # doctest: +SKIP
>>> server.serve_forever()                                                             # doctest: +SKIP
"""

from rtcheck.web.app import DashboardSettings, create_app
from rtcheck.web.server import make_dashboard_server

__all__ = ["DashboardSettings", "create_app", "make_dashboard_server"]
