"""Interview Buddy: a Jupyter server extension for AI-assisted coding interviews."""

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    from .service.app import IBExtension

    return [{"module": "ib_extension", "app": IBExtension}]
