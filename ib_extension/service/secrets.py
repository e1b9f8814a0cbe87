"""The service's secrets live in files, never in a process environment.

A process's initial environment stays readable in /proc/<pid>/environ for its whole
life, whatever it later removes from `os.environ`, and every child inherits it. So
`ib serve` reads the secrets it was started with, writes each to a 0600 file in a 0700
folder of the data dir, and re-executes itself with an environment that lacks them;
the server then reads them from here. The dashboards' kernels get the interviewer
token's path (IB_TOKEN_FILE), not its value.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..api.client import TOKEN_FILE_ENV  # noqa: F401  (where a dashboard kernel finds the token)
from ..api.environment import PROVIDER_KEY_ENV, SECRET_ENV  # noqa: F401  (one list, in api)

PROVIDER_KEY = "llm_api_key"
INTERVIEWER_TOKEN = "interviewer_token"
HUB_TOKEN = "jupyterhub_api_token"


def folder_of(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / "secrets"


class SecretsFolder:
    """One file per secret, 0600, in a 0700 folder owned by this user."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _ensure(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.stat().st_uid != os.geteuid():
            raise PermissionError(f"{self.path} belongs to another user; the service keeps "
                                  "its secrets only in a folder of its own.")
        self.path.chmod(0o700)

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, value: str) -> Path:
        """Write `value` to a new 0600 file (never readable by others, even briefly)."""
        self._ensure()
        path = self.file(name)
        fresh = path.with_name(f".{name}.{os.getpid()}")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value)
        os.replace(fresh, path)
        return path

    def remove(self, name: str) -> None:
        self.file(name).unlink(missing_ok=True)

    def read(self, name: str) -> str | None:
        try:
            return self.file(name).read_text(encoding="utf-8") or None
        except FileNotFoundError:
            return None


def take_from_environment(env: dict[str, str], folder: SecretsFolder) -> dict[str, str]:
    """Move the secrets out of `env` into `folder`; returns `env` without them.

    A secret not given this time is removed from the folder too, so a key the operator
    dropped is not used from an earlier run."""
    key = next((env[name] for name in PROVIDER_KEY_ENV if env.get(name)), "")
    for name, value in ((PROVIDER_KEY, key), (INTERVIEWER_TOKEN, env.get("IB_TOKEN", "")),
                        (HUB_TOKEN, env.get("JUPYTERHUB_API_TOKEN", ""))):
        if value:
            folder.write(name, value)
        else:
            folder.remove(name)
    return {k: v for k, v in env.items() if k not in SECRET_ENV}
