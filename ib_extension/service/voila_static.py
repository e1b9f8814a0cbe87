"""Voilà's template static files, answering a malformed path with a 404, not a 500.

Voilà's TemplateStaticFileHandler splits `<template>/static/<file>` with asserts, so
`/voila/templates/../x` and friends raise in the handler (500s in the log, a traceback
per request). This subclass, routed before Voilà's own, refuses any path that is not
that shape, or that holds an empty, `.` or `..` segment, before Voilà sees it.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join
from tornado import web

PATTERN = "/voila/templates/(.*)"  # Voilà's own route for these files

try:
    from voila.static_file_handler import TemplateStaticFileHandler
except ImportError:  # Voilà is a dependency, but the guard must not be what breaks
    TemplateStaticFileHandler = None


def _well_formed(path: str) -> bool:
    parts = path.split("/")
    return (len(parts) >= 3 and parts[1] == "static" and "\\" not in path
            and not any(part in ("", ".", "..") for part in parts))


def route_before_voila(web_app: web.Application) -> None:
    """Put the guarded handler ahead of Voilà's route (the first matching route wins)."""
    if TemplateStaticFileHandler is None:
        return

    class SafeTemplateStaticFileHandler(TemplateStaticFileHandler):
        def parse_url_path(self, path: str) -> str:
            if not _well_formed(path):
                raise web.HTTPError(404)
            return super().parse_url_path(path)

    pattern = url_path_join(web_app.settings.get("base_url", "/"), PATTERN)
    web_app.add_handlers(".*$", [(pattern, SafeTemplateStaticFileHandler)])
    rules = web_app.default_router.rules
    rules.insert(0, rules.pop(len(rules) - 2))  # add_handlers put it just before the last
