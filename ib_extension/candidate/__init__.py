"""The candidate's side: their JupyterLab bound to one session (`ib lab`), the chat
panel and the activity telemetry. It knows only its session's candidate token."""
