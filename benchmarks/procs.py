"""What the benchmarks share: starting the demo model, `ib serve` and a LiteLLM proxy as
real processes on free loopback ports, making sessions, reading a process's CPU time and
memory from /proc, and nearest-rank percentiles. Not a benchmark itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# `make bench` creates this virtualenv with `pip install 'litellm[proxy]'`; the project's
# own environment stays free of LiteLLM and its dependencies.
LITELLM_VENV = Path(os.environ.get("IB_BENCH_LITELLM_VENV", ROOT / ".venv-bench-litellm"))
QUESTION = "How do I sort a list of tuples by the second item?"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def add_output_args(ap) -> None:
    """--json and --logs, as every benchmark that starts processes takes them."""
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    ap.add_argument("--logs", type=Path,
                    help="keep the processes' logs and data in this folder (default: a "
                         "temporary one, removed)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, within: float = 90.0, **kw) -> None:
    """Poll `url` until it answers at all; stop early if `proc` exits. If it never
    answers, `proc` is stopped before the error is raised (nothing is left running)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:4]} exited with {proc.returncode} before {url} "
                             f"came up; the end of its log:\n{log_tail(proc)}")
        try:
            httpx.get(url, timeout=2, **kw)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    stop([proc])
    raise SystemExit(f"{url} did not come up within {within:.0f} s")


def _popen(cmd: list[str], workdir: Path, log: str, **kw) -> subprocess.Popen:
    """`cmd` with its output to the file `log` in `workdir` (kept as `proc.log_path`)."""
    path = workdir / log
    with open(path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)
    proc.log_path = path
    return proc


def log_tail(proc: subprocess.Popen, lines: int = 15) -> str:
    path = getattr(proc, "log_path", None)
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_demo_model(workdir: Path, latency: float = 0.0,
                     tps: float = 0.0) -> tuple[subprocess.Popen, str]:
    """The offline demo model (`ib_extension.cli.fake_llm`); returns it and its /v1 URL."""
    port = free_port()
    proc = _popen([sys.executable, "-m", "ib_extension.cli.fake_llm", "--port", str(port),
                   "--latency", str(latency), "--tokens-per-second", str(tps)],
                  workdir, f"fake-llm-{port}.log")
    url = f"http://127.0.0.1:{port}/v1"
    wait_up(url + "/models", proc, headers={"Authorization": "Bearer bench"})
    return proc, url


# What every benchmark's service runs with: no per-session rate limit (one session makes
# every request in overhead.py; concurrency.py's sessions loop faster than a person).
BENCH_CONFIG = {"rate_limit_per_minute": 0}
# The settings that bound a service under load, printed in the benchmarks' headers.
LOAD_SETTINGS = ("rate_limit_per_minute", "max_concurrent_provider_calls",
                 "max_provider_calls_per_session", "queue_timeout_seconds", "completion_cap",
                 "llm_timeout", "llm_max_retries")


def config_text(settings: dict) -> str:
    return "".join(f"c.IBExtension.{k} = {v!r}\n" for k, v in settings.items())


def service_settings(overrides: dict) -> dict:
    """LOAD_SETTINGS as the service will have them: the package's defaults (of the tree
    on PYTHONPATH) with `overrides` applied."""
    from ib_extension.service.app import IBExtension

    traits = IBExtension.class_traits()
    return {k: overrides.get(k, traits[k].default_value) for k in LOAD_SETTINGS}


def start_service(workdir: Path, llm_url: str, token: str, settings: dict | None = None,
                  data: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`ib serve` in front of `llm_url`, interviewer token `token`, with a config file of
    `settings` (default BENCH_CONFIG) and its data in `data` (default a new folder in
    `workdir`, kept as `proc.data_dir`); returns it and its base URL."""
    config = workdir / "bench_config.py"
    config.write_text(config_text(BENCH_CONFIG if settings is None else settings))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
    env["IB_TOKEN"] = token
    data = data or workdir / f"data-{port}"
    proc = _popen([sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port),
                   "--data-dir", str(data), "--llm-base-url", llm_url, "--config", str(config)],
                  workdir, f"service-{port}.log", env=env)
    proc.data_dir = data
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/ib/api/health", proc)
    return proc, url


def start_relay(workdir: Path, llm_url: str) -> tuple[subprocess.Popen, str]:
    """The bare relay (benchmarks/relay.py) in front of `llm_url`; it and its /v1 URL."""
    port = free_port()
    proc = _popen([sys.executable, str(Path(__file__).with_name("relay.py")), "--port",
                   str(port), "--upstream", llm_url], workdir, f"relay-{port}.log")
    url = f"http://127.0.0.1:{port}/v1"
    wait_up(url + "/models", proc)
    return proc, url


def litellm_installed() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def start_litellm(workdir: Path, llm_url: str,
                  model: str) -> tuple[subprocess.Popen, str, str]:
    """A LiteLLM proxy (from LITELLM_VENV) that maps `model` to the demo model at
    `llm_url`; returns it, its /v1 URL and its master key (the clients' API key; it
    refuses to start without one). One worker, no database, no logging callbacks,
    no download of its price list (its usage telemetry is off unless configured): a
    quiet, fair comparison."""
    config = workdir / "litellm.yaml"
    # JSON is YAML: no PyYAML needed here.
    import json
    config.write_text(json.dumps({
        "model_list": [{"model_name": model,
                        "litellm_params": {"model": f"openai/{model}", "api_base": llm_url,
                                           "api_key": "bench"}}],
        "litellm_settings": {"telemetry": False, "set_verbose": False,
                             "json_logs": False, "request_timeout": 600},
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True},
    }, indent=2))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY", "PYTHONPATH", "VIRTUAL_ENV")}
    key = "sk-" + secrets.token_hex(32)
    env.update({"LITELLM_MASTER_KEY": key,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list
                "LITELLM_LOG": "ERROR",
                "DISABLE_SCHEMA_UPDATE": "True", "NO_DOCS": "True"})
    proc = _popen([str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config),
                   "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                  workdir, f"litellm-{port}.log", env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/health/liveliness", proc, within=180)
    return proc, url + "/v1", key


def create_session(client: httpx.Client, url: str, token: str, name: str = "Benchmark") -> dict:
    """A session with a budget and time no benchmark reaches; the CreatedSession body."""
    created = client.post(url + "/ib/api/sessions", timeout=60,
                          headers={"Authorization": f"token {token}"},
                          json={"candidate_name": name, "token_budget": 10_000_000,
                                "time_limit_seconds": 24 * 3600,
                                "challenge_text": "Benchmark the gateway."})
    if created.status_code != 201:
        raise RuntimeError(f"creating a session: HTTP {created.status_code} {created.text}")
    return created.json()


def new_token() -> str:
    return secrets.token_hex(16)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# ---- /proc --------------------------------------------------------------------------
def _stat_fields(pid: int, task: str = "") -> list[str]:
    """The fields of /proc/<pid>/stat (of thread `task`'s, if given)."""
    with open(f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat") as f:
        raw = f.read()
    return raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces


def descendants(pid: int) -> list[int]:
    """`pid`'s live descendants (a proxy's forked workers, say)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(_stat_fields(int(entry))[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """User + system CPU seconds of `pid` (and, with `tree`, of its live descendants and
    the children it has waited for)."""
    total = 0
    for p in [pid, *(descendants(pid) if tree else [])]:
        try:
            fields = _stat_fields(p)
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if tree:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / CLOCK_TICKS


SIDE_THREADS = "gateway side threads"  # concurrency.py's key for side_thread_cpu_seconds


def side_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid`'s live threads other than its main one (the ib
    service's: the DuckDB thread and the journal's mover; its event loop is the main)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        try:
            fields = _stat_fields(pid, tid)
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load_average() -> str:
    """The machine's 1-minute load average and its cores, to judge how busy the run was."""
    with open("/proc/loadavg") as f:
        return f"{f.read().split()[0]} on {os.cpu_count()} cores"


@contextlib.contextmanager
def workdir(keep: Path | None):
    """A folder for the processes' logs and data: `keep` (kept), or a temporary one."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="ib-bench-") as tmp:
        yield Path(tmp)


# ---- statistics ---------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (nan of nothing)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
