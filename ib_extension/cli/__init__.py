"""`ib`: run the service, the demo model and the demo; drive sessions from the shell.

Client subcommands reach the service with --url/--token, defaulting to IB_URL/IB_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx

from ..api.client import IBClient, IBClientError

DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fake-llm"]:
        from .fake_llm import main as fake_main

        return fake_main(argv[1:]) or 0
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.ib_settings = settings_argv(extra) if getattr(args, "takes_settings", False) else []
        if extra and not args.ib_settings:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return args.func(args) or 0
    except IBClientError as e:
        print(f"error: {e.message} ({e.code})", file=sys.stderr)
        return 1
    except httpx.HTTPError as e:
        where = getattr(getattr(e, "request", None), "url", None)
        print(f"error: cannot reach the service{f' at {where}' if where else ''}: "
              f"{type(e).__name__}. Is `ib serve` running, and are --url/IB_URL right?",
              file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ib", description="Interview Buddy")
    sub = p.add_subparsers(metavar="COMMAND")

    s = sub.add_parser("serve", help="run the ib service (API, budget, log, dashboards)")
    s.add_argument("--port", type=int, default=8890)
    s.add_argument("--ip", default="127.0.0.1")
    s.add_argument("--data-dir", default=".ib-data", help="folder of the DuckDB file")
    s.add_argument("--llm-base-url", default=os.environ.get("IB_LLM_BASE_URL", ""),
                   help="OpenAI-compatible provider (default: OpenAI when OPENAI_API_KEY is set)")
    s.add_argument("--model", action="append", dest="models",
                   help="a model sessions may use (repeat; the first is the default)")
    s.add_argument("--config", help="a Jupyter config file with IBExtension settings")
    s.add_argument("--env-file", help="a file of KEY=VALUE lines (mode 600: the provider key, "
                                      "IB_TOKEN) read at start-up as if in the environment "
                                      "(`ib hub` passes its secrets this way)")
    s.set_defaults(func=cmd_serve, takes_settings=True)

    # The demo model parses its own options (`ib fake-llm --help`).
    sub.add_parser("fake-llm", help="run the offline demo model (OpenAI-compatible)",
                   add_help=False)

    from .demo import add_demo_parser
    from .hub import add_hub_parser

    add_demo_parser(sub)
    add_hub_parser(sub)

    sess = sub.add_parser("session", help="create and control sessions")
    ssub = sess.add_subparsers(metavar="ACTION")
    c = ssub.add_parser("create", help="create a session; prints its id and candidate token")
    _client_args(c)
    c.add_argument("--candidate", required=True, help="candidate's name")
    c.add_argument("--email")
    c.add_argument("--minutes", type=int, required=True)
    c.add_argument("--tokens", type=int, required=True)
    c.add_argument("--challenge-text")
    c.add_argument("--challenge-title")
    c.add_argument("--challenge-id")
    c.add_argument("--model")
    c.add_argument("--policy", help="assist policy (full, hints, no_code)")
    c.add_argument("--json", action="store_true", help="print a JSON object")
    c.set_defaults(func=cmd_session_create)

    ls = ssub.add_parser("list", help="list sessions")
    _client_args(ls)
    ls.add_argument("--status")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_session_list)

    li = ssub.add_parser("link", help="issue a new candidate link (on JupyterHub); the "
                                      "old one stops working")
    _client_args(li)
    li.add_argument("session_id")
    li.set_defaults(func=cmd_session_link)

    for action in ("show", "start", "pause", "resume", "lock", "unlock", "end"):
        a = ssub.add_parser(action, help=f"{action} a session")
        _client_args(a)
        a.add_argument("session_id")
        a.set_defaults(func=cmd_session_action, action=action)
    t = ssub.add_parser("token", help="issue a new candidate token (the old one stops "
                                      "working at once) and print it")
    _client_args(t)
    t.add_argument("session_id")
    t.add_argument("--json", action="store_true", help="print a JSON object")
    t.set_defaults(func=cmd_session_token)
    for name, unit in (("extend-time", "minutes"), ("extend-tokens", "tokens")):
        a = ssub.add_parser(name, help=f"give a session more {unit}")
        _client_args(a)
        a.add_argument("session_id")
        a.add_argument("amount", type=int, help=unit)
        a.set_defaults(func=cmd_session_extend, what=name)

    _add_optional_subcommands(sub)
    return p


def _add_optional_subcommands(sub) -> None:
    """Subcommands that live in their own modules (candidate workspace, export)."""
    for module, adder in (("candidate.lab", "add_lab_parser"), ("cli.export", "add_export_parser")):
        try:
            mod = __import__(f"ib_extension.{module}", fromlist=[adder])
        except ImportError:
            continue
        getattr(mod, adder)(sub, _client_args)


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("IB_URL"), help="service URL (IB_URL)")
    p.add_argument("--token", default=os.environ.get("IB_TOKEN"),
                   help="interviewer token (IB_TOKEN)")


def settings_argv(extra: list[str]) -> list[str]:
    """`--IBExtension.<setting>=<value>` arguments, checked here and handed to the server
    as a Jupyter server takes them; anything else is refused with a sentence."""
    if not extra:
        return []
    from ..service.app import IBExtension

    known = IBExtension.class_traits(config=True)
    for arg in extra:
        name, sep, value = arg.removeprefix("--IBExtension.").partition("=")
        if not arg.startswith("--IBExtension.") or not sep:
            raise ValueError(f"unrecognized argument {arg!r}: settings are written "
                             "--IBExtension.<setting>=<value>")
        if name not in known:
            raise ValueError(f"IBExtension has no setting {name!r} (README: Settings).")
        trait = known[name]
        if not hasattr(trait, "item_from_string"):  # lists and dicts are checked at start
            try:
                trait.validate(None, trait.from_string(value))
            except Exception as e:
                raise ValueError(f"--IBExtension.{name}={value}: {e}") from None
    return list(extra)


def _client(args) -> IBClient:
    if not args.token:
        raise ValueError("No interviewer token: pass --token or set IB_TOKEN.")
    return IBClient(args.url, args.token)


# ---- serve ---------------------------------------------------------------------------
def serve_argv(args) -> list[str]:
    from ..api.environment import PROVIDER_KEY_ENV
    from ..api.resources import dashboards_dir
    from ..dashboards import voila_settings
    from ..service.hubenv import hub_env

    hub = hub_env()  # set when JupyterHub runs this service (`ib hub`)
    ip, port = (hub.ip, hub.port) if hub else (args.ip, args.port)
    base_url = args.llm_base_url
    if not base_url:
        if not any(os.environ.get(name) for name in PROVIDER_KEY_ENV):
            raise ValueError("No LLM provider: set OPENAI_API_KEY, or pass --llm-base-url "
                             "(for the offline demo model run `ib demo`, or `ib fake-llm --port 8892` "
                             "and --llm-base-url http://127.0.0.1:8892/v1).")
        base_url = "https://api.openai.com/v1"
    models = args.models or DEFAULT_MODELS
    argv = [
        f"--ServerApp.ip={ip}", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={dashboards_dir()}",
        "--ServerApp.reraise_server_extension_failures=True",
        "--ServerApp.default_url=/voila/render/monitor.ipynb",  # the service's root page
        "--ServerApp.jpserver_extensions=ib_extension.service=True",
        f"--IBExtension.data_dir={os.path.abspath(args.data_dir)}",
        f"--IBExtension.llm_base_url={base_url}",
    ]
    # A List trait on the command line takes one value per flag.
    argv += [f"--IBExtension.models={m}" for m in models]
    argv += voila_settings.argv()  # the dashboards' template and Voilà settings
    if hub is not None:  # ---- a JupyterHub service: hub OAuth, under the hub's prefix
        argv += [f"--ServerApp.base_url={hub.prefix}",
                 "--ServerApp.identity_provider_class="
                 "ib_extension.service.hubauth.HubIdentityProvider",
                 # behind the hub's proxy: the Host and scheme clients used are the proxy's
                 "--ServerApp.trust_xheaders=True", "--ServerApp.allow_remote_access=True"]
    if args.config:
        argv.append(f"--config={args.config}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    return argv + list(getattr(args, "ib_settings", []))


def _setting(argv: list[str], name: str, default: str = "") -> str:
    """The value of `--<name>=...` on a server command line."""
    flag = f"--{name}="
    return next((a[len(flag):] for a in argv if a.startswith(flag)), default)


def load_env_file(path: str) -> None:
    """Put a private file's KEY=VALUE lines into this process's environment."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ValueError(f"--env-file {path}: {e.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} holds secrets but others may read it "
                         f"(mode {stat.S_IMODE(mode):o}): chmod 600 {path}")
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                name, sep, value = line.rstrip("\n").partition("=")
                if not sep or not name.strip():
                    raise ValueError(f"{path}, line {number}: expected KEY=VALUE")
                os.environ[name.strip()] = value


def cmd_serve(args) -> int:
    from ..service.hubenv import hub_env
    from .serve import run

    if args.env_file:
        load_env_file(args.env_file)
    argv = serve_argv(args)
    hub = hub_env()
    url = (f"http://{_setting(argv, 'ServerApp.ip')}:{_setting(argv, 'ServerApp.port')}"
           f"{_setting(argv, 'ServerApp.base_url', '/')}")
    return run(argv, url, os.path.abspath(args.data_dir), hub_token=hub.api_token if hub else "")


# ---- session -------------------------------------------------------------------------
def cmd_session_create(args) -> int:
    client = _client(args)
    created = client.create_session(
        candidate_name=args.candidate, candidate_email=args.email,
        time_limit_seconds=args.minutes * 60, token_budget=args.tokens,
        challenge_text=args.challenge_text, challenge_title=args.challenge_title,
        challenge_id=args.challenge_id, model=args.model, assist_policy=args.policy,
    )
    if args.json:
        print(json.dumps({k: created[k] for k in ("id", "candidate_token", "candidate_url",
                                                  "session") if k in created}, indent=2))
    else:
        print(f"session id:      {created['id']}")
        if created.get("candidate_url"):
            print(f"candidate link:  {created['candidate_url']}  (send it; it opens their "
                  "workspace in one browser)")
        print(f"candidate token: {created['candidate_token']}")
        print(f"candidate API:   {client.url}/ib/v1  (OpenAI-compatible; the token is the API key)")
    return 0


def cmd_session_link(args) -> int:
    issued = _client(args).new_link(args.session_id)
    print(issued["candidate_url"])
    return 0


def cmd_session_list(args) -> int:
    page = _client(args).list_sessions(status=args.status, limit=500)
    if args.json:
        print(json.dumps(page["sessions"], indent=2))
        return 0
    for s in page["sessions"]:
        print(f"{s['id']}  {s['status']:<9} {'locked ' if s['locked'] else ''}"
              f"{s['candidate_name']:<24} {int(s['time_left_seconds']) // 60:>4} min left  "
              f"{s['tokens_used']}/{s['token_budget']} tokens")
    print(f"{page['total']} session(s)")
    return 0


def cmd_session_action(args) -> int:
    client = _client(args)
    s = client.session(args.session_id) if args.action == "show" else client.action(
        args.session_id, args.action)
    print(json.dumps(s, indent=2))
    return 0


def cmd_session_token(args) -> int:
    client = _client(args)
    issued = client.rotate_token(args.session_id)
    if args.json:
        print(json.dumps(issued, indent=2))
        return 0
    # Whatever the service hands over (a token; with the hub, a link too), shown as is.
    for key, value in issued.items():
        if key != "id":
            print(f"{key.replace('_', ' ')}: {value}")
    print(f"The previous one stopped working. Open the workspace with: ib lab --service-url "
          f"{client.url} --session-token {issued['candidate_token']}")
    return 0


def cmd_session_extend(args) -> int:
    client = _client(args)
    if args.what == "extend-time":
        s = client.extend_time(args.session_id, args.amount * 60)
    else:
        s = client.extend_tokens(args.session_id, args.amount)
    print(json.dumps(s, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
