"""The candidate's side: their JupyterLab bound to one session (`ib lab`), the chat
panel and the activity telemetry. It knows only its session's candidate token."""


def _jupyter_server_extension_points():
    from .app import IBCandidate

    return [{"module": "ib_extension.candidate", "app": IBCandidate}]
