"""The ib service: sessions, budget, clock, the AI gateway, the log (DuckDB) and the
HTTP API, as a Jupyter server extension."""


def _jupyter_server_extension_points():
    from .app import IBExtension

    return [{"module": "ib_extension.service", "app": IBExtension}]
