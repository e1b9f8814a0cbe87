"""`ib hub`: Interview Buddy on JupyterHub. The hub with its proxy, the ib service as a
hub-managed service under /services/interview-buddy/, the idle culler, and (with --demo
and no API key) the offline demo model; candidates open one link each.

It checks what the hub will need, restricts what candidates must not read (and says
so), writes <data-dir>/hub/jupyterhub_config.py (hub/config.py does the configuring),
starts JupyterHub, waits until the service answers through the proxy, and prints what
to open. Ctrl-C (or SIGTERM) stops the hub, which stops everything it started.
"""

from __future__ import annotations

import grp
import json
import os
import pprint
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..api.environment import PROVIDER_KEY_ENV
from ..api.resources import REPO
from ..lean_start import command

# `ib` builds every subcommand's parser, `ib export` included: what only `ib hub` runs
# (api.hub and its pydantic models, hub.system_users and asyncio) is imported when it runs.

PROXY = "configurable-http-proxy"


def add_hub_parser(sub) -> None:
    h = sub.add_parser("hub", help="run Interview Buddy on JupyterHub: one link per candidate, "
                                   "each in their own JupyterLab")
    h.add_argument("--port", type=int, default=8000,
                   help="the hub's port; internal ports (loopback) follow it: +1 proxy API, "
                        "+2 hub, +3 ib service, +4 demo model")
    h.add_argument("--ip", default="127.0.0.1",
                   help="address the hub listens on (0.0.0.0: every interface)")
    h.add_argument("--public-url", default="",
                   help="the hub's URL as browsers reach it, when a TLS proxy is in front "
                        "(https://interviews.example.com); candidate links use it")
    h.add_argument("--data-dir", default=".ib-hub",
                   help="the hub's database and cookie secret, the service's DuckDB file")
    h.add_argument("--llm-base-url", default=os.environ.get("IB_LLM_BASE_URL", ""),
                   help="OpenAI-compatible provider (default: OpenAI when OPENAI_API_KEY is set)")
    h.add_argument("--model", action="append", dest="models",
                   help="a model sessions may use (repeat; the first is the default)")
    h.add_argument("--config", help="a config file: JupyterHub settings (the authenticator, "
                                    "the spawner...), c.IBHub and c.IBExtension settings")
    h.add_argument("--demo", action="store_true",
                   help="use the bundled offline demo model unless an API key is set")
    h.set_defaults(func=cmd_hub, takes_settings=True)


# ---- checks ---------------------------------------------------------------------------
def proxy_command() -> str:
    """The checkout's pinned proxy (package-lock.json), else one on PATH."""
    local = REPO / "node_modules" / ".bin" / PROXY
    found = str(local) if local.exists() else shutil.which(PROXY)
    if not found:
        raise ValueError(f"JupyterHub's proxy ({PROXY}) is not installed: run `make install` "
                         f"(npm ci from package-lock.json) or `npm install -g {PROXY}`.")
    return found


def check_ports(ip: str, ports: dict[int, str]) -> None:
    for port, what in ports.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip if what == "the hub" else "127.0.0.1", port))
            except OSError:
                raise ValueError(f"Port {port} ({what}) is in use: choose another --port "
                                 "(the internal ports follow it).") from None


def check_candidates_can_run_python() -> None:
    """As root, candidates' servers run as unprivileged users from this environment: try it
    as `nobody` (a python under /root, as pyenv's, is not runnable by them)."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                        "--clear-groups", sys.executable, "-c", "import ib_extension.candidate.lab"],
                       capture_output=True, text=True, timeout=120, cwd="/")
    if r.returncode != 0:
        raise ValueError(
            f"Candidates' servers run as their own system users, and such a user cannot use "
            f"this Python environment ({sys.executable}): {r.stderr.strip().splitlines()[-1:]}. "
            "Make the environment with a Python every user can run, in a folder every user "
            "can read (`make install` uses Debian's /usr/bin/python3).")


def restrict(path: Path, mode_off: int = stat.S_IRWXO, group: int | None = None) -> str | None:
    """Take permissions away (default: from others), optionally hand the folder to a group;
    a line saying what changed, if anything."""
    if not path.exists():
        return None
    info = path.stat()
    before, after = stat.S_IMODE(info.st_mode), stat.S_IMODE(info.st_mode) & ~mode_off
    changes = []
    if after != before:
        os.chmod(path, after)
        changes.append(f"mode {before:o} -> {after:o}")
    if group is not None and info.st_gid != group:
        os.chown(path, -1, group)
        changes.append(f"group {grp.getgrgid(group).gr_name}")
    return f"{path}: {', '.join(changes)}" if changes else None


def own(path: Path, user: pwd.struct_passwd) -> None:
    """Make `path` (a folder, recursively) belong to `user` alone."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def service_settings(cfg) -> dict:
    """The IBExtension section of the operator's config, for the service alone (the rest of
    that file, OAuth secrets included, stays with the hub)."""
    section = cfg.get("IBExtension", {}) if cfg is not None else {}
    try:
        return json.loads(json.dumps({"IBExtension": dict(section)}))
    except TypeError as e:
        raise ValueError(f"--config: the IBExtension settings must be plain values "
                         f"(strings, numbers, lists, dicts): {e}") from None


def _user_config(path: str | None):
    if not path:
        return None
    from traitlets.config.loader import PyFileConfigLoader

    file = Path(path).resolve()
    if not file.is_file():
        raise ValueError(f"--config {path}: no such file.")
    return PyFileConfigLoader(file.name, str(file.parent)).load_config()


def _challenge_dirs(ib_settings: list[str], cfg) -> list[Path]:
    from ..api.challenges import default_dirs

    named = [a.split("=", 1)[1] for a in ib_settings
             if a.startswith("--IBExtension.challenge_dirs=")]
    if cfg is not None and "challenge_dirs" in cfg.get("IBExtension", {}):
        named += list(cfg.IBExtension.challenge_dirs)
    return [Path(d).resolve() for d in (named or default_dirs())]


# ---- the command ----------------------------------------------------------------------
def cmd_hub(args) -> int:
    data = Path(args.data_dir).resolve()
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    cfg = _user_config(args.config)
    has_key = any(os.environ.get(k) for k in PROVIDER_KEY_ENV)
    base_url, demo_model = args.llm_base_url, False
    if not base_url and has_key:
        base_url = "https://api.openai.com/v1"
    elif not base_url and args.demo:
        base_url, demo_model = f"http://127.0.0.1:{args.port + 4}/v1", True
    elif not base_url:
        raise ValueError("No LLM provider: set OPENAI_API_KEY, or pass --llm-base-url, or "
                         "--demo for the bundled offline demo model.")
    proxy = proxy_command()
    ports = {args.port: "the hub", args.port + 1: "the proxy's API", args.port + 2:
             "the hub's internal API", args.port + 3: "the ib service"}
    if demo_model:
        ports[args.port + 4] = "the demo model"
    check_ports(args.ip, ports)
    if as_root:
        check_candidates_can_run_python()

    from traitlets.config import Config

    from ..api import hub as contract
    from ..hub import config as hubconfig
    from ..hub import system_users

    # What candidates must not read: the data dir (hub db, cookie secret, DuckDB file, the
    # service's secrets), the answer key, and the operator's config (OAuth secrets). As root
    # the service runs as its own unprivileged user: it gets its folder and the library.
    service_user = hubconfig.IBHub(config=cfg or Config()).service_user if as_root else ""
    runs_as = system_users.ensure_service_user(service_user) if service_user else None
    hub_paths = hubconfig.paths(data)
    data.mkdir(parents=True, exist_ok=True)
    # Others may pass through (to the service's own folder) but list or read nothing.
    restricted = [restrict(data, stat.S_IRWXG | (stat.S_IROTH | stat.S_IWOTH
                                                  if runs_as else stat.S_IRWXO))]
    hub_paths["hub"].mkdir(mode=0o700, exist_ok=True)
    hub_paths["service_data"].mkdir(mode=0o700, exist_ok=True)
    if runs_as is not None:
        closed = [f for f in hub_paths["service_data"].parents
                  if not f.stat().st_mode & stat.S_IXOTH]
        if closed:
            raise ValueError(f"The ib service runs as {service_user!r}, which cannot reach its "
                             f"folder {hub_paths['service_data']}: {closed[0]} lets no one else "
                             "through. Choose a --data-dir every user may pass through "
                             "(e.g. under /srv), or chmod o+x that folder.")
        own(hub_paths["service_data"], runs_as)
    restricted += [restrict(d, group=runs_as.pw_gid if runs_as else None)
                   for d in _challenge_dirs(args.ib_settings, cfg)]
    if args.config:
        restricted.append(restrict(Path(args.config).resolve()))

    default_login = cfg is None or "authenticator_class" not in cfg.get("JupyterHub", {})
    password = hubconfig.interviewer_password(data) if default_login else None
    token = os.environ.get("IB_TOKEN") or secrets.token_hex(24)
    service_args = ["--data-dir", str(hub_paths["service_data"]), "--llm-base-url", base_url]
    service_args += [f"--model={m}" for m in (args.models or [])]
    if cfg is not None:
        write_private(hub_paths["service_config"], json.dumps(service_settings(cfg), indent=1),
                      runs_as)
        service_args.append(f"--config={hub_paths['service_config']}")
    service_args += args.ib_settings
    settings = {"ip": args.ip, "port": args.port, "public_url": args.public_url,
                "data_dir": str(data), "proxy_command": proxy, "python": sys.executable,
                "as_root": as_root, "demo_model": demo_model, "service_args": service_args}
    config_file = write_hub_config(hub_paths["hub"], settings,
                                   Path(args.config).resolve() if args.config else None)

    env = {**os.environ, "IB_TOKEN": token}  # the hub's config hands it to the service, privately
    started = time.monotonic()
    # Started in the background by a shell, this process ignores SIGINT, and so would the
    # hub and every service it starts: each would then wait out JupyterHub's 30 s before
    # its SIGTERM, one after another, and this command's grace would run out, leaving
    # them behind. A handled signal is reset in a child, an ignored one is not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    hub = subprocess.Popen([*command("jupyterhub"), "-f", str(config_file)],
                           cwd=hub_paths["hub"], env=env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        url = hubconfig.local_url(args.ip, args.port)
        _wait_up(hub, f"{url}/hub/health", "the hub")
        _wait_up(hub, f"{url}{contract.SERVICE_PREFIX}ib/api/health", "the ib service")
        print_banner(args, url, password, token if "IB_TOKEN" not in os.environ else None,
                     [r for r in restricted if r], as_root, demo_model, cfg,
                     time.monotonic() - started, service_user)
        return hub.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(hub)


def write_private(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def write_hub_config(folder: Path, settings: dict, user_config: Path | None) -> Path:
    file = folder / "jupyterhub_config.py"
    lines = ["# Written by `ib hub` at each start: change your own --config file instead.",
             "c = get_config()  # noqa: F821",
             f"SETTINGS = {pprint.pformat(settings, sort_dicts=False)}"]
    if user_config is not None:
        lines.append(f"load_subconfig({str(user_config)!r})  # noqa: F821")
    lines += ["from ib_extension.hub.config import apply", "", "apply(c, SETTINGS)", ""]
    write_private(file, "\n".join(lines))
    return file


def _wait_up(proc: subprocess.Popen, url: str, what: str, within: float = 240.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"JupyterHub exited (code {proc.returncode}) before {what} "
                             "answered; see its messages above.")
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} did not answer at {url} within {within:.0f} s.")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # the hub stops the servers, services and proxy it started
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def print_banner(args, url: str, password: str | None, generated_token: str | None,
                 restricted: list[str], as_root: bool, demo_model: bool, cfg,
                 seconds: float, service_user: str = "") -> None:
    from ..api import hub as contract

    public = (args.public_url or url).rstrip("/")
    svc = public + contract.SERVICE_PREFIX.rstrip("/")
    line = "=" * 76
    print(f"\n{line}\nInterview Buddy on JupyterHub is ready ({seconds:.1f} s).\n")
    print(f"Interviewers: {public}/hub/login")
    if password:
        print(f"  sign in as:  interviewer   password: {password}  (kept in "
              f"{Path(args.data_dir).resolve() / 'hub' / 'interviewer-password'})")
    else:
        print(f"  sign in with the hub's authenticator; members of the group "
              f"'{contract.INTERVIEWERS_GROUP}' reach the dashboards")
    print(f"  dashboards:  {svc}/voila/render/monitor.ipynb")
    print(f"  new session: {svc}/voila/render/create.ipynb  (it gives the candidate's link)")
    print(f"  API:         {svc}/ib/api/openapi.json   (scripts: --url {svc}"
          f"{f'  IB_TOKEN={generated_token}' if generated_token else '  --token $IB_TOKEN'})")
    print(f"  health:      {svc}/ib/api/health   {public}/hub/health")
    print("\nCandidates open their one-time link in any browser: nothing to install.")
    if demo_model:
        print("AI replies come from the bundled offline demo model (set OPENAI_API_KEY for a "
              "real one).")
    print("\nIsolation:")
    if as_root:
        print("  each candidate's server runs as its own unprivileged system user (ib-s-...),")
        print("  home mode 700; they still share the network, /tmp and the machine's CPU and memory.")
        print(f"  the ib service runs as {service_user!r}" if service_user else
              "  the ib service runs as root (IBHub.service_user is empty)")
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        print(f"  NOT ISOLATED: the hub is not root, so every candidate's server runs as {me!r},")
        print("  the OS user of the hub and the service: a candidate's code can read the data")
        print(f"  dir ({Path(args.data_dir).resolve()}: hub database, cookie secret, DuckDB file,")
        print("  the service's secrets), the answer key and other candidates' workspaces. Run")
        print("  `ib hub` as root, or use DockerSpawner/KubeSpawner (README), for real interviews.")
    for change in restricted:
        print(f"  restricted {change}")
    if as_root and not _grading_isolated(args.ib_settings, cfg):
        print(f"  grading runs the candidate's final notebook as {service_user or 'root'}, "
              "beside the service's files: set")
        print("  IBExtension.grading_command_prefix to isolate it (README: Challenges and grading).")
    print(f"\nPorts: {args.port} the hub ({args.ip}); loopback: {args.port + 1} proxy API, "
          f"{args.port + 2} hub, {args.port + 3} ib service"
          f"{f', {args.port + 4} demo model' if demo_model else ''}")
    print(f"Press Ctrl-C to stop.\n{line}", flush=True)


def _grading_isolated(ib_settings: list[str], cfg) -> bool:
    if any(a.startswith("--IBExtension.grading_command_prefix=") for a in ib_settings):
        return True
    return cfg is not None and bool(cfg.get("IBExtension", {}).get("grading_command_prefix"))
