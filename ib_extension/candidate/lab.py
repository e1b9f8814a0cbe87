"""`ib lab`: start a candidate's JupyterLab bound to one interview session.

    ib lab --service-url URL --session-token T [--port P] [--workdir DIR] [--lab-token TOKEN]
    ib lab --hub     (as a JupyterHub single-user server: what the hub's spawner runs)

It checks the token with the service, prepares the working folder (the candidate
notebook made from notebooks/candidate.ipynb with the session's challenge, kept as is
when it already exists so a restart loses nothing), then replaces itself with JupyterLab
in the candidate role. JupyterLab and every kernel it starts get an environment without
the provider key or interviewer credentials, whatever the launching shell had; the only
credential they hold is the session's candidate token (IB_SESSION_TOKEN).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from .. import lean_start
from ..api.client import IBClient
from ..api.environment import FORBIDDEN_ENV, SERVICE_URL_ENV, SESSION_TOKEN_ENV
from . import workdir as workspace_files
from .notebook import NOTEBOOK_NAME

# Lab settings of the workspace: no "Jupyter news?" prompt, no update checks.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}
# The first layout: the candidate notebook open, the file browser folded away. Any link to
# /lab shows it; later the candidate's own layout is kept.
FIRST_LAYOUT = {
    "data": {
        "layout-restorer:data": {
            "main": {"dock": {"type": "tab-area", "currentIndex": 0,
                              "widgets": [f"notebook:{NOTEBOOK_NAME}"]},
                     "current": f"notebook:{NOTEBOOK_NAME}"},
            "left": {"collapsed": True},
            "right": {"collapsed": True},
        },
        f"notebook:{NOTEBOOK_NAME}": {"data": {"path": NOTEBOOK_NAME, "factory": "Notebook"}},
    },
    "metadata": {"id": "default"},
}


def add_lab_parser(sub, client_args=None) -> None:
    p = sub.add_parser("lab", help="start a candidate's JupyterLab bound to one session")
    p.add_argument("--service-url", default=os.environ.get("IB_SERVICE_URL"),
                   help="URL of the ib service (IB_SERVICE_URL)")
    p.add_argument("--session-token", default=os.environ.get("IB_SESSION_TOKEN"),
                   help="the session's candidate token (IB_SESSION_TOKEN)")
    p.add_argument("--port", type=int, default=8891)
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--workdir", help="working folder (default: ./ib-workspace-<session id>)")
    p.add_argument("--lab-token", help="the token to open this JupyterLab (default: generated)")
    p.add_argument("--hub", action="store_true",
                   help="be a JupyterHub single-user server (run by the hub's spawner, which "
                        "sets the environment): the workspace is the current folder")
    p.set_defaults(func=cmd_lab)


def prepare_workdir(workdir: Path, session: dict[str, Any]) -> Path:
    """Create the workspace; returns the candidate notebook's path."""
    from jupyterlab_server.workspaces_handler import WORKSPACE_EXTENSION, slugify

    notebook = workspace_files.prepare(workdir, session)
    settings = workdir / ".ib" / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    workspaces = workdir / ".ib" / "lab-workspaces"
    workspaces.mkdir(parents=True, exist_ok=True)
    first = workspaces / (slugify("default") + WORKSPACE_EXTENSION)
    if not first.exists():
        first.write_text(json.dumps(FIRST_LAYOUT), encoding="utf-8")
    return notebook


def lab_env(base: dict[str, str], service_url: str, session_token: str, lab_token: str | None,
            workdir: Path) -> dict[str, str]:
    """The environment of the candidate's server and kernels: no secret but the session's."""
    env = {k: v for k, v in base.items() if k not in FORBIDDEN_ENV}
    env.update({SERVICE_URL_ENV: service_url, SESSION_TOKEN_ENV: session_token,
                "IPYTHONDIR": str(workspace_files.ipython_dir(workdir))})
    if lab_token:  # on JupyterHub the hub authenticates the server: no token of its own
        env["JUPYTER_TOKEN"] = lab_token
    return env


def lab_argv(args, workdir: Path) -> list[str]:
    if args.hub:  # JupyterHub's single-user server: the hub's environment says where to listen
        argv = lean_start.command("jupyterhub.singleuser")
    else:
        argv = [*lean_start.command("jupyterlab"), "--no-browser",
                f"--ServerApp.ip={args.ip}", f"--ServerApp.port={args.port}",
                "--ServerApp.port_retries=0"]
    argv += [f"--ServerApp.root_dir={workdir}",
            "--ServerApp.jpserver_extensions=ib_extension.candidate=True",
            f"--LabApp.user_settings_dir={workdir / '.ib' / 'lab-settings'}",
            f"--LabApp.workspaces_dir={workdir / '.ib' / 'lab-workspaces'}",
            # The panel's Submit saves the notebook first through JupyterLab's commands.
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.default_url=/lab/tree/{NOTEBOOK_NAME}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    return argv


def cmd_lab(args) -> int:
    if not args.service_url or not args.session_token:
        raise ValueError("ib lab needs --service-url and --session-token "
                         "(or IB_SERVICE_URL and IB_SESSION_TOKEN).")
    url = args.service_url.rstrip("/")
    client = IBClient(url, args.session_token, scheme="bearer")
    session = client.me()  # a wrong token or URL stops here with the service's sentence
    client.close()
    default = Path.cwd() if args.hub else Path(f"ib-workspace-{session['id']}")
    workdir = Path(args.workdir or default).resolve()
    prepare_workdir(workdir, session)
    # On JupyterHub the hub authenticates the browser; no token of our own.
    lab_token = None if args.hub else (args.lab_token or secrets.token_hex(16))
    env = lab_env(dict(os.environ), url, args.session_token, lab_token, workdir)
    if args.hub:
        # Candidates share the machine's temporary folders: keep their files to themselves.
        os.umask(0o077)
        tmp = workdir / ".ib" / "tmp"
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmp)
    print(f"Candidate workspace for session {session['id']} in {workdir}", flush=True)
    if lab_token:
        print(f"Open: http://{args.ip}:{args.port}/lab/tree/{NOTEBOOK_NAME}?token={lab_token}",
              flush=True)
    argv = lab_argv(args, workdir)
    os.execve(argv[0], argv, env)  # this process becomes JupyterLab, with the clean environment
    return 0  # not reached
