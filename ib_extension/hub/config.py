"""The hub's configuration for Interview Buddy: what `ib hub` writes into
<data-dir>/hub/jupyterhub_config.py is a call to `apply(c, settings)`, made after the
operator's own config file (if any) was loaded, so theirs wins wherever they set
something (authenticator, spawner, ...) and ours fills the rest:

- the hub and its proxy (configurable-http-proxy) on the chosen port, the internal ports
  after it (proxy API +1, hub +2, ib service +3, demo model +4), all on loopback;
- the hub's database and cookie secret in the data dir;
- interviewers: any authenticator (default: a shared password for the user
  `interviewer`), wrapped with candidate links; the group `interviewers` gets access
  to the service by scope;
- candidates: LocalProcessSpawner with a system user each when the hub runs as root
  (else SimpleLocalProcessSpawner, sharing the hub's OS user), running `ib lab --hub`;
- services: the ib service (hub-managed, under /services/interview-buddy/), the idle
  culler, and the offline demo model when asked for; roles with the least scopes.
"""

from __future__ import annotations

import importlib
import os
import pwd
import secrets
import stat
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from traitlets import Int, Unicode
from traitlets.config import Configurable

from ..api import hub as contract
from ..api.environment import PROVIDER_KEY_ENV
from ..api.resources import CANDIDATE_NOTEBOOK

DEMO_USER = "interviewer"
CULLER = "idle-culler"
DEMO_MODEL = "demo-model"
# The service's secrets go to it in a mode-600 file (`ib serve --env-file`): the hub
# keeps a managed service's `environment` in its database.
SERVICE_SECRETS = (*PROVIDER_KEY_ENV, "IB_TOKEN")


class IBHub(Configurable):
    """Settings of `ib hub` beyond the command line (put them in the --config file)."""

    cull_idle_seconds = Int(3600, config=True,
                            help="Stop a candidate's server after this long without activity "
                                 "(jupyterhub-idle-culler); the end of an interview stops it at "
                                 "once. 0: no culler.")
    service_user = Unicode("ib-service", config=True,
                           help="As root: the unprivileged system user the ib service runs as "
                                "(made if missing, home /var/lib/interview-buddy), so that "
                                "neither the dashboards' kernels nor grading run as root. "
                                "Empty: the hub's own user.")


@dataclass(frozen=True)
class Ports:
    public: int

    @property
    def proxy_api(self) -> int:
        return self.public + 1

    @property
    def hub(self) -> int:
        return self.public + 2

    @property
    def service(self) -> int:
        return self.public + 3

    @property
    def demo_model(self) -> int:
        return self.public + 4


def paths(data_dir: str | Path) -> dict[str, Path]:
    """The data dir: hub/ is the hub's (its database, cookie secret, our generated config),
    service/ the service's (DuckDB file, secrets, settings), each readable by its owner only."""
    hub, service = Path(data_dir) / "hub", Path(data_dir) / "service"
    return {"hub": hub, "db": hub / "jupyterhub.sqlite",
            "cookie_secret": hub / "jupyterhub_cookie_secret",
            "password": hub / "interviewer-password", "service_data": service,
            "service_env": service / "secrets.env", "service_config": service / "ib_config.json",
            "candidates": Path(data_dir) / "candidates"}


def interviewer_password(data_dir: str | Path) -> str:
    """The demo authenticator's password, made once and kept (mode 600) in the data dir."""
    file = paths(data_dir)["password"]
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(12) + "\n")
    return file.read_text().strip()


def local_url(ip: str, port: int) -> str:
    """The proxy's address as processes on this machine reach it."""
    host = "127.0.0.1" if ip in ("", "0.0.0.0", "::") else ip
    return f"http://{host}:{port}"


def apply(c: Any, s: dict[str, Any]) -> None:
    """Configure the hub `c` from `ib hub`'s settings `s` (see cli/hub.py)."""
    p = paths(s["data_dir"])
    ports = Ports(s["port"])
    hub_url = local_url(s["ip"], ports.public)
    jh = c.JupyterHub

    def default(section, name: str, value: Any) -> None:
        if name not in section:
            section[name] = value

    # ---- the hub and its proxy --------------------------------------------------------
    default(jh, "bind_url", f"http://{s['ip']}:{ports.public}")
    if s.get("public_url"):
        default(jh, "public_url", s["public_url"])
    default(jh, "hub_bind_url", f"http://127.0.0.1:{ports.hub}")
    default(c.ConfigurableHTTPProxy, "api_url", f"http://127.0.0.1:{ports.proxy_api}")
    default(c.ConfigurableHTTPProxy, "command", [s["proxy_command"]])
    default(c.ConfigurableHTTPProxy, "pid_file", str(p["hub"] / "proxy.pid"))
    default(jh, "db_url", f"sqlite:///{p['db']}")
    default(jh, "cookie_secret_file", str(p["cookie_secret"]))
    default(jh, "default_url", contract.SERVICE_PREFIX + "voila/render/monitor.ipynb")
    default(jh, "template_vars", {"announcement_login":
                                  "Interview Buddy — interviewers sign in here. Candidates: "
                                  "open the link your interviewer sent you."})

    # ---- interviewers, and the candidates' link login ----------------------------------
    groups: dict[str, dict] = {contract.CANDIDATES_GROUP: {"users": []}}
    if "authenticator_class" not in jh:
        jh.authenticator_class = "shared-password"
        default(c.SharedPasswordAuthenticator, "user_password",
                interviewer_password(s["data_dir"]))
        default(c.Authenticator, "allowed_users", {DEMO_USER})
        groups[contract.INTERVIEWERS_GROUP] = {"users": [DEMO_USER]}
    from .authenticator import with_candidate_links

    authenticator = _load(jh.authenticator_class, "jupyterhub.authenticators")
    jh.authenticator_class = with_candidate_links(authenticator)
    if not any(c[k.__name__].get("manage_groups", False) for k in authenticator.__mro__
               if issubclass(k, Configurable)):  # else the authenticator owns the groups
        jh.load_groups = {**groups, **jh.get("load_groups", {})}

    service_token = secrets.token_hex(32)  # made at each start, held in memory only
    service_url = f"http://127.0.0.1:{ports.service}"
    c.CandidateLinks.ib_service_url = service_url + contract.SERVICE_PREFIX.rstrip("/")
    c.CandidateLinks.ib_service_token = service_token
    as_root = s["as_root"]
    default(c.CandidateLinks, "create_system_users", as_root)

    # ---- candidates' servers ------------------------------------------------------------
    if as_root:
        default(jh, "spawner_class", "localprocess")
    else:  # one OS user for all: `ib hub` says at start-up what that exposes
        default(jh, "spawner_class", "simple")
        default(c.CandidateLinks, "candidate_home_base", str(p["candidates"]))
        default(c.SimpleLocalProcessSpawner, "home_dir_template",
                str(p["candidates"] / "{username}"))
    default(c.Spawner, "cmd", [s["python"], "-m", "ib_extension.cli", "lab", "--hub"])
    default(c.Spawner, "default_url", f"/lab/tree/{CANDIDATE_NOTEBOOK}")
    default(c.Spawner, "disable_user_config", True)
    default(c.Spawner, "start_timeout", 120)  # a first start on a busy machine is slow
    default(c.Spawner, "http_timeout", 120)

    # ---- services and their roles -------------------------------------------------------
    settings = IBHub(config=c)
    service = {
        "name": contract.SERVICE_NAME, "url": service_url, "api_token": service_token,
        "command": [s["python"], "-m", "ib_extension.cli", "serve",
                    "--env-file", str(p["service_env"]), *s["service_args"]],
        # Not secrets: the proxy's address for the service and the candidates' servers; a
        # token-count cache the service's user can write.
        "environment": {"IB_HUB_URL": hub_url,
                        "TIKTOKEN_CACHE_DIR": str(p["service_data"] / "tiktoken-cache")},
        "cwd": str(p["service_data"]),
        "oauth_no_confirm": True, "display": True,
        # The service imports Jupyter, Voilà and DuckDB twice (`ib serve` re-executes
        # itself without its secrets): on a busy machine that takes longer than the 30 s
        # JupyterHub waits by default.
        "timeout": 300,
        "info": {"description": "Interview Buddy: dashboards and interviewer API"},
    }
    owner = None
    if as_root and settings.service_user:
        service["user"] = settings.service_user
        owner = pwd.getpwnam(settings.service_user)  # `ib hub` made it
    services = [service]
    in_candidates = f"!group={contract.CANDIDATES_GROUP}"
    roles = [
        {"name": "ib-interviewers", "groups": [contract.INTERVIEWERS_GROUP],
         "scopes": [f"access:services!service={contract.SERVICE_NAME}"]},
        # The service reads and stops candidates' servers, makes a token that reaches one
        # of them (to capture the notebook), and deletes their users: nobody else's.
        {"name": "ib-service", "services": [contract.SERVICE_NAME],
         "scopes": [f"read:users{in_candidates}", f"read:servers{in_candidates}",
                    f"delete:servers{in_candidates}", f"tokens{in_candidates}",
                    f"delete:users{in_candidates}"]},
    ]
    if settings.cull_idle_seconds > 0:
        services.append({"name": CULLER, "command": [
            s["python"], "-m", "jupyterhub_idle_culler",
            f"--timeout={settings.cull_idle_seconds}",
            f"--cull-every={max(30, min(300, settings.cull_idle_seconds // 4))}"]})
        roles.append({"name": "ib-idle-culler", "services": [CULLER], "scopes": [
            f"list:users{in_candidates}", f"read:users:activity{in_candidates}",
            f"read:servers{in_candidates}", f"delete:servers{in_candidates}"]})
    if s.get("demo_model"):
        services.append({"name": DEMO_MODEL, "command": [
            s["python"], "-m", "ib_extension.cli.fake_llm", "--port", str(ports.demo_model)]})
    jh.services = [*jh.get("services", []), *services]
    jh.load_roles = [*jh.get("load_roles", []), *roles]
    write_service_env(p["service_env"], _take_secrets(), owner)


def _take_secrets() -> dict[str, str]:
    """The service's secrets, taken out of this (the hub's) environment so that the proxy
    and the other services it starts never inherit them."""
    return {k: os.environ.pop(k) for k in SERVICE_SECRETS if os.environ.get(k)}


def write_service_env(path: Path, values: dict[str, str], owner=None) -> None:
    """KEY=VALUE lines in a file only the service's user reads (0600, in its 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in values.items())
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _load(value: Any, group: str) -> type:
    """A class given as itself, an entry-point name ("shared-password") or a dotted path."""
    if isinstance(value, type):
        return value
    found = [ep for ep in entry_points(group=group) if ep.name == value]
    if found:
        return found[0].load()
    module, _, name = str(value).rpartition(".")
    if not module:
        raise ValueError(f"{value!r} is neither a known {group} entry point nor a class path")
    return getattr(importlib.import_module(module), name)

