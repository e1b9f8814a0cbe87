"""`ib serve`: move the secrets into files, then become the Jupyter server without them.

`run()` is `ib serve`. It writes the provider key, the interviewer token and any
JUPYTERHUB_API_TOKEN to the data dir's secrets folder (service/secrets.py) and replaces
itself (same pid) with `python -m ib_extension.cli.serve ARGV...`, started with an
environment that lacks them. That `main()` reads the interviewer token from its file
into the server's configuration: never the command line, which every local user can
read in /proc/<pid>/cmdline, and never the environment.
"""

from __future__ import annotations

import os
import secrets
import sys

from ..lean_start import without_unused_format_checks
from ..service import secrets as service_secrets
from ..service.hubenv import HUB_TOKEN_FILE_ENV

DATA_DIR_FLAG = "--IBExtension.data_dir="


def run(argv: list[str], url: str, data_dir: str, hub_token: str = "") -> int:
    """`url`: the server's own address and base URL. `hub_token`: the hub's API token
    when JupyterHub runs this service (hubenv.py took it from the environment)."""
    folder = service_secrets.SecretsFolder(service_secrets.folder_of(data_dir))
    token = os.environ.get("IB_TOKEN") or secrets.token_hex(24)
    given = {**os.environ, "IB_TOKEN": token}
    if hub_token:
        given["JUPYTERHUB_API_TOKEN"] = hub_token
    env = service_secrets.take_from_environment(given, folder)
    # The dashboards' kernels are started by this server and call its API with these:
    # the token's file, not its value (on JupyterHub the extension points IB_URL at the
    # hub's proxy).
    env["IB_URL"] = url.rstrip("/")
    env[service_secrets.TOKEN_FILE_ENV] = str(folder.file(service_secrets.INTERVIEWER_TOKEN))
    if given.get("JUPYTERHUB_API_TOKEN"):
        env[HUB_TOKEN_FILE_ENV] = str(folder.file(service_secrets.HUB_TOKEN))
    # glibc: few arenas, so that memory a flood of big requests used is not spread over
    # one per thread (where to draw the line between heap and mmap is service/memory.py's).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    print(f"Interview Buddy service on {url}  (API: {url}ib/api/openapi.json)", flush=True)
    if not os.environ.get("IB_TOKEN"):
        print(f"Interviewer token (IB_TOKEN): {token}", flush=True)
    os.execve(sys.executable, [sys.executable, "-m", "ib_extension.cli.serve", *argv], env)
    return 1  # not reached: execve replaces this process


def main(argv: list[str] | None = None) -> None:
    """The Jupyter server of `ib serve`, its interviewer token read from the secrets folder."""
    without_unused_format_checks()
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    argv = sys.argv[1:] if argv is None else argv
    data_dir = next(a.removeprefix(DATA_DIR_FLAG) for a in argv if a.startswith(DATA_DIR_FLAG))
    folder = service_secrets.SecretsFolder(service_secrets.folder_of(data_dir))
    token = folder.read(service_secrets.INTERVIEWER_TOKEN)
    if not token:
        sys.exit(f"error: no interviewer token in {folder.path}; start the service with `ib serve`.")
    config = Config()
    config.IdentityProvider.token = token
    ServerApp.launch_instance(argv=argv, config=config)


if __name__ == "__main__":
    main()
