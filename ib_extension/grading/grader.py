"""Grade a submitted notebook against a challenge's visible and hidden tests.

`grade()` starts a new IPython kernel for every submission (through nbclient),
runs the candidate's code cells in order (not the template's panel or setup
cells: see SKIP_TAGS and SKIP_ROLES), then the challenge's tests, and returns a
JSON-serialisable result:

    {"score": 0.75, "passed": 6, "total": 8, "duration_seconds": 3.2,
     "tests": [{"name": "test_empty", "visible": true, "passed": false,
                "message": "assert merge([]) == [] failed; left side is None, ..."}],
     "cell_errors": [{"cell": 3, "message": "ZeroDivisionError: division by zero"}],
     "output_truncated": false, "error": null}

`error` is one sentence when something stopped the grading from running
normally (a candidate cell that raised or timed out, a dead kernel, the overall
time limit); the tests still report what they can.

What this module guards against, on one machine:
- secrets and files: the kernel runs in a bubblewrap sandbox (sandbox.py): new PID,
  mount, network and IPC namespaces whose filesystem holds the OS and Python read
  only, its sockets folder and two small tmpfs, and nothing of the service; as a
  dedicated unprivileged user when we are root. Its environment is an allowlist
  (PATH, LANG, LC_*, TZ, and a throw-away HOME), never a copy of ours. Where no
  sandbox can be made, grading is refused (SandboxUnavailable), never run unisolated;
- the answer key: hidden tests enter the kernel only after the visible tests have
  reported, so what the candidate is shown was computed before graded code could read
  a hidden test (the candidate sees hidden tests as a count only: sessions.py);
- runaway code: a wall-clock limit per candidate cell and per test (the cell is
  interrupted, the test fails "timed out after N s"), an overall limit after
  which the kernel is killed (and with it every process of its PID namespace), and
  RLIMIT_AS / RLIMIT_CPU / RLIMIT_FSIZE set by the kernel launcher (kernel.py);
- floods: printed and displayed output is capped inside the kernel and not kept.

From the service, use `grade_in_subprocess()`: the grader is then a separate process
with the allowlisted environment, so not even the kernel's parent holds a secret.
To grade in a container instead, give it a `command_prefix` (`["docker", "run",
"--rm", "-i", "--network", "none", "IMAGE"]`) and `isolation="external"`.

Grading is also not proof against a determined cheat: the tests run in the
candidate's own kernel after their code, which can patch anything. The score
is a signal for the interviewer, who reads the code.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import dataclasses
import json
import logging
import math
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from ..api.challenges import Challenge, dump_challenge, parse_challenge
from . import kernel as grading_kernel
from .kernel import KERNEL_MODULE, MESSAGE_LIMIT, RESULT_MIME, TRUNCATION_NOTICE
from .sandbox import LAUNCHER_PATH, Sandbox, SandboxUnavailable, prepare

logger = logging.getLogger(__name__)

# Cells of the candidate template that are not part of the solution: by tag, or by
# the template's own `metadata.ib.role` (notebooks/candidate.ipynb).
SKIP_TAGS = frozenset({"ib-panel", "ib-setup", "ib-tests", "ib-no-grade"})
SKIP_ROLES = frozenset({"panel", "setup", "tests"})
# The only variables the kernel inherits from the grader's environment.
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
KERNEL_NAME = "ib-grading"
OUTPUT_LIMIT_CHARS = 1_000_000
TRUNCATED = TRUNCATION_NOTICE.format(OUTPUT_LIMIT_CHARS)
CPU_SLACK_SECONDS = 10  # RLIMIT_CPU is a backstop behind the wall-clock limits
LIMITS = ("timeout_seconds", "cell_timeout_seconds", "memory_mb")  # grade()'s keyword arguments
TIMEOUT_ENAME = "IBCellTimeout"  # marks nbclient's stand-in reply for a cell that timed out
# Where the kernel runs: a prepared Sandbox, "sandbox" (make one) or "external" (none:
# whoever starts the grader vouches for its isolation).
Isolation = Sandbox | Literal["sandbox", "external"]


def candidate_cells(notebook: dict) -> list[tuple[int, str]]:
    """(1-based cell number, source) of each code cell to run, in order."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise ValueError("the submitted notebook has no 'cells' list (expected nbformat v4 JSON)")
    picked = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata") or {}
        tags = metadata.get("tags") or []
        role = (metadata.get("ib") or {}).get("role")
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if source.strip() and not SKIP_TAGS.intersection(tags) and role not in SKIP_ROLES:
            picked.append((number, source))
    return picked


def kernel_environment(home: Path) -> dict[str, str]:
    """The kernel's whole environment: an allowlist, never a copy of ours."""
    env = {name: os.environ[name] for name in ENV_ALLOWLIST if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(HOME=str(home), TMPDIR=str(home), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    # glibc reserves 64 MB of address space per thread arena; under RLIMIT_AS that
    # would leave little room for the candidate's own data.
    env["MALLOC_ARENA_MAX"] = "2"
    return env


def _write_kernelspec(
    folder: Path, memory_mb: int, cpu_seconds: int, sandbox: Sandbox | None, shared: Path,
    home: Path,
) -> None:
    spec_dir = folder / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    argv = [
        sys.executable,
        "-I",  # ignore PYTHON* variables and user site-packages
        LAUNCHER_PATH if sandbox else grading_kernel.__file__,
        f"--memory-mb={memory_mb}",
        f"--cpu-seconds={cpu_seconds}",
        f"--output-chars={OUTPUT_LIMIT_CHARS}",
        "--",
        "-f",
        "{connection_file}",
        "--HistoryManager.enabled=False",
        "--IPKernelApp.capture_fd_output=False",
        "--InteractiveShell.ast_node_interactivity=none",  # no echo of a cell's last value
    ]
    if sandbox is not None:
        # Its parent is the sandbox's init (pid 1), which ipykernel would take for an
        # orphaning; bubblewrap's --die-with-parent ends it with the grader instead.
        argv.append("--IPKernelApp.parent_handle=0")
        argv = sandbox.wrap(argv, shared=shared, home=home)
    # Interrupts travel as messages: a signal to bubblewrap would not reach the kernel.
    spec = {"argv": argv, "display_name": "Interview Buddy grading", "language": "python",
            "interrupt_mode": "message"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


class _KernelManager(AsyncKernelManager):
    """Hands the sandboxed kernel's user its connection file (written 0600 by us)."""

    sandbox: Sandbox | None = None

    def write_connection_file(self, **kwargs) -> None:
        super().write_connection_file(**kwargs)
        if self.sandbox is not None:
            self.sandbox.hand_over(Path(self.connection_file))


class _GradingClient(NotebookClient):
    """Keeps only the test results the harness publishes; drops every other output,
    noting whether the kernel had to truncate it."""

    output_truncated = False

    def output(self, outs, msg, display_id, cell_index):
        content = msg["content"]
        if msg["msg_type"] == "display_data" and RESULT_MIME in (content.get("data") or {}):
            outs.append(nbformat.v4.output_from_msg(msg))
        elif TRUNCATED in content.get("text", ""):
            self.output_truncated = True
        return None

    def clear_output(self, outs, msg, cell_index):
        """Results already published must survive a clear_output() in tested code."""


def _harness_source(label: str, tests: str, visible: bool, timeout_seconds: float,
                    nonce: str, first: bool) -> str:
    """One harness cell: the first runs the visible tests in the candidate's globals, the
    second the hidden tests in the scope the first left (helpers defined there)."""
    scope = "globals()" if first else "__ib_scope"
    return (
        f"import {KERNEL_MODULE} as __ib_kernel\n"
        f"__ib_scope = __ib_kernel.report_tests({scope}, {[(label, tests, visible)]!r}, "
        f"{timeout_seconds!r}, {nonce!r})\n"
    )


def _seconds(value: float) -> str:
    return f"{value:g} s"


class _Grading:
    """One grading run: the kernel, its deadline, and what was learnt so far."""

    def __init__(self, challenge: Challenge, timeout_seconds: float, cell_timeout_seconds: float):
        self.challenge = challenge
        self.timeout_seconds = timeout_seconds
        self.cell_timeout_seconds = cell_timeout_seconds
        self.deadline = time.monotonic() + timeout_seconds
        self.results: dict[str, dict] = {}
        self.cell_errors: list[dict] = []
        self.stopped: str | None = None  # why the tests could not run, or not all of them
        self.output_truncated = False
        self._error_reply: dict | None = None
        self._cell_limit = 0.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def stop(self, sentence: str) -> None:
        self.stopped = self.stopped or sentence

    def stop_for_time(self) -> None:
        self.stop(f"The grading time limit of {_seconds(self.timeout_seconds)} ran out.")

    def _harness(self) -> list[tuple[nbformat.NotebookNode, str, set[str]]]:
        """The test cells, in order, each with its own nonce and the names it may report.

        Hidden tests enter the kernel only after the visible tests have reported, so the
        messages the candidate sees were computed before any hidden test was there to be
        read by their code."""
        groups = [("<visible tests>", self.challenge.visible_tests, True,
                   self.challenge.visible_test_names),
                  ("<hidden tests>", self.challenge.hidden_tests, False,
                   self.challenge.hidden_test_names)]
        cells = []
        for index, (label, tests, visible, names) in enumerate(groups):
            nonce = secrets.token_hex(16)
            source = _harness_source(label, tests, visible, self.cell_timeout_seconds, nonce,
                                     first=index == 0)
            cells.append((nbformat.v4.new_code_cell(source), nonce, set(names)))
        return cells

    async def run(self, cells: list[tuple[int, str]], workdir: Path, memory_mb: int,
                  sandbox: Sandbox | None) -> None:
        kernels, home, shared = workdir / "kernels", workdir / "home", workdir / "shared"
        home.mkdir()
        shared.mkdir()
        if sandbox is not None:
            sandbox.hand_over(shared)
        _write_kernelspec(kernels, memory_mb, math.ceil(self.timeout_seconds) + CPU_SLACK_SECONDS,
                          sandbox, shared, home)
        harness = self._harness()
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for _, source in cells]
            + [cell for cell, _, _ in harness]
        )
        # Unix sockets in the shared folder: the sandbox has no network to listen on.
        km = _KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
            connection_file=str(shared / "connection.json"),
            transport="ipc",
            ip=str(shared / "kernel"),
        )
        km.sandbox = sandbox
        client = _GradingClient(
            notebook,
            km=km,
            allow_errors=True,
            # On a time-out nbclient interrupts the kernel and hands back this reply.
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
            timeout_func=self._timeout_for,
            startup_timeout=max(1, math.ceil(self.left())),
            iopub_timeout=1,
            shutdown_kernel="immediate",
            record_timing=False,
            on_cell_error=self._on_cell_error,
        )
        with open(workdir / "kernel.log", "wb") as log:
            try:
                async with client.async_setup_kernel(
                    cleanup_kc=True,
                    env=kernel_environment(home),
                    cwd=str(home),
                    stdout=log,
                    stderr=log,
                ):
                    await self._run_cells(client, notebook, cells, harness)
            except Exception as e:  # the kernel would not start, or broke the protocol
                log.flush()
                # The log is the kernel's own output, which graded code writes: it goes to
                # the service's log only, never into a result a candidate may read.
                tail = (workdir / "kernel.log").read_text(errors="replace")[-300:].strip()
                logger.warning("grading kernel failed: %s\n%s", e, tail)
                self.stop(f"The grading kernel failed ({type(e).__name__}).")
                atexit.unregister(client._cleanup_kernel)  # nbclient leaves it registered
        self.output_truncated = client.output_truncated

    def _timeout_for(self, cell) -> float:
        # nbclient asks before each cell; the tests get what is left of the overall limit.
        limit = self.left()
        if cell.metadata.get("ib_role") == "candidate":
            limit = min(limit, self.cell_timeout_seconds)
        self._cell_limit = round(max(1.0, limit), 1)
        return self._cell_limit

    def _on_cell_error(self, cell, cell_index, execute_reply):
        self._error_reply = execute_reply["content"]

    async def _run_cells(self, client, notebook, cells, harness) -> None:
        candidate = notebook.cells[: len(cells)]
        for index, ((number, _), cell) in enumerate(zip(cells, candidate, strict=True)):
            if self.left() <= 0:
                self.stop_for_time()
                return
            cell.metadata["ib_role"] = "candidate"
            self._error_reply = None
            try:
                await client.async_execute_cell(cell, index)
            except DeadKernelError:
                self.stop(
                    f"The kernel stopped while running cell {number} "
                    "(out of memory or CPU time, or the code exited)."
                )
                return
            if self._error_reply is not None:
                self._record_cell_error(number, self._error_reply)
        for offset, (cell, nonce, names) in enumerate(harness):
            if self.left() <= 0:
                self.stop_for_time()
                break
            try:
                await client.async_execute_cell(cell, len(candidate) + offset)
            except DeadKernelError:
                self.stop("The kernel stopped while running the tests.")
                break
            finally:
                self._collect_results(cell.outputs, nonce, names)
        if len(self.results) < len(
            self.challenge.visible_test_names + self.challenge.hidden_test_names
        ):
            if self.left() <= 0:
                self.stop_for_time()
            self.stop("The tests stopped before reporting every result.")

    def _collect_results(self, outputs, nonce: str, names: set[str]) -> None:
        # Trust only results carrying this cell's nonce, for its own tests, and only their
        # expected fields.
        visible = set(self.challenge.visible_test_names)
        for output in outputs:
            result = output.get("data", {}).get(RESULT_MIME)
            if not isinstance(result, dict) or result.get("nonce") != nonce:
                continue
            name = result.get("name")
            if name in names and name not in self.results:
                self.results[name] = {
                    "name": name,
                    "visible": name in visible,
                    "passed": result.get("passed") is True,
                    "message": str(result.get("message", ""))[:MESSAGE_LIMIT],
                }

    def _record_cell_error(self, number: int, reply: dict) -> None:
        if reply.get("ename") == TIMEOUT_ENAME:
            message = f"timed out after {_seconds(self._cell_limit)} and was interrupted"
        else:
            message = f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}".rstrip(": ")
            message = (
                message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
            )
        self.cell_errors.append({"cell": number, "message": message})

    def error(self) -> str | None:
        if self.stopped:
            return self.stopped
        if self.cell_errors:
            first = self.cell_errors[0]
            verb = "" if first["message"].startswith("timed out") else "raised "
            more = len(self.cell_errors) - 1
            return f"Cell {first['cell']} {verb}{first['message']}" + (
                f" (and {more} more cell{'s' * (more > 1)} failed)." if more else "."
            )
        return None

    def tests(self) -> list[dict]:
        missing = "no result was reported"
        if self.stopped:
            missing = f"not run: {self.stopped[0].lower()}{self.stopped[1:]}"
        tests = []
        for names, visible in (
            (self.challenge.visible_test_names, True),
            (self.challenge.hidden_test_names, False),
        ):
            for name in names:
                default = {"name": name, "visible": visible, "passed": False, "message": missing}
                tests.append(self.results.get(name, default))
        return tests

    def result(self, duration_seconds: float) -> dict:
        tests = self.tests()
        passed = sum(test["passed"] for test in tests)
        return {
            "score": passed / len(tests) if tests else 0.0,
            "passed": passed,
            "total": len(tests),
            "tests": tests,
            "cell_errors": self.cell_errors,
            "output_truncated": self.output_truncated,
            "duration_seconds": round(duration_seconds, 3),
            "error": self.error(),
        }


async def grade_async(
    notebook: dict,
    challenge: Challenge,
    *,
    timeout_seconds: float = 60,
    memory_mb: int = 1024,
    cell_timeout_seconds: float | None = None,
    isolation: Isolation = "sandbox",
) -> dict:
    """Grade `notebook` (nbformat v4 JSON) against `challenge`; see the module docstring.

    `cell_timeout_seconds` limits each candidate cell and each test (default: a
    third of `timeout_seconds`). `isolation` is a prepared Sandbox, "sandbox" (prepare
    one: the default) or "external" (no sandbox: whoever runs this process vouches for
    its isolation, a throw-away container say). Raises ValueError for a notebook without
    cells, and SandboxUnavailable when no sandbox can be made."""
    cells = candidate_cells(notebook)
    sandbox = resolve_isolation(isolation)
    started = time.monotonic()
    grading = _Grading(challenge, timeout_seconds, cell_timeout_seconds or timeout_seconds / 3)
    with tempfile.TemporaryDirectory(prefix="ib-grade-") as workdir, _signal_handlers_kept():
        try:  # a backstop: nbclient's per-cell limits should end the run well before
            await asyncio.wait_for(
                grading.run(cells, Path(workdir), memory_mb, sandbox),
                timeout=timeout_seconds + 15,
            )
        except asyncio.TimeoutError:
            grading.stop_for_time()
    return grading.result(time.monotonic() - started)


def resolve_isolation(isolation: Isolation) -> Sandbox | None:
    """The sandbox to run the kernel in; None only when isolation is "external"."""
    if isinstance(isolation, Sandbox):
        return isolation
    if isolation == "external":
        return None
    if isolation == "sandbox":
        return prepare()
    raise ValueError(f"isolation is a Sandbox, 'sandbox' or 'external', not {isolation!r}")


@contextmanager
def _signal_handlers_kept():
    """nbclient installs its own SIGINT/SIGTERM handlers and, when done, resets them
    to the defaults rather than to what was there (a Jupyter server's, say)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # nbclient leaves signals alone outside the main thread
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def grade(notebook: dict, challenge: Challenge, **limits) -> dict:
    """Synchronous `grade_async`, for scripts and threads (not inside a running event loop)."""
    return asyncio.run(grade_async(notebook, challenge, **limits))


async def grade_in_subprocess(
    notebook: dict,
    challenge: Challenge,
    *,
    timeout_seconds: float = 60,
    memory_mb: int = 1024,
    cell_timeout_seconds: float | None = None,
    command_prefix: Sequence[str] = (),
    isolation: Isolation = "sandbox",
) -> dict:
    """Grade in a separate process: `python -m ib_extension.grading.grader --request`,
    started with the kernel's allowlisted environment and, if given, under
    `command_prefix` (a container, say: then `isolation="external"` may be right).

    This is the way to grade from the service: the grader process holds none of
    the service's secrets, and its kernel runs in the sandbox (`isolation`, as for
    `grade_async`). Returns a result in every case but one: SandboxUnavailable when
    no sandbox can be made. Cancelling it kills the grader."""
    candidate_cells(notebook)  # refuse a malformed notebook here, with its sentence
    sandbox = resolve_isolation(isolation)
    request = {
        "notebook": notebook,
        "challenge": dump_challenge(challenge),
        "timeout_seconds": timeout_seconds,
        "memory_mb": memory_mb,
        "cell_timeout_seconds": cell_timeout_seconds,
        "isolation": "external" if sandbox is None else dataclasses.asdict(sandbox),
    }
    started = time.monotonic()
    failed = _Grading(challenge, timeout_seconds, cell_timeout_seconds or timeout_seconds / 3)
    with tempfile.TemporaryDirectory(prefix="ib-grader-") as home:
        # The grader's kernel exits by itself once the grader is gone (ipykernel
        # watches its parent), so killing the grader is enough to stop both.
        process = await asyncio.create_subprocess_exec(
            *command_prefix,
            sys.executable,
            "-m",
            "ib_extension.grading.grader",
            "--request",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=kernel_environment(Path(home)),
            cwd=home,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(json.dumps(request).encode()), timeout=timeout_seconds + 30
            )
        except asyncio.TimeoutError:
            failed.stop_for_time()
            return failed.result(time.monotonic() - started)
        finally:  # also when the caller cancels the grading
            if process.returncode is None:
                process.kill()
                await process.wait()
    if process.returncode != 0:
        # Its stderr stays in the service log: graded code may have written into it.
        tail = err.decode(errors="replace").strip()[-300:]
        logger.warning("grader process failed (exit %s): %s", process.returncode, tail)
        failed.stop(f"The grader process failed with exit status {process.returncode}; "
                    "the service log has the details.")
        return failed.result(time.monotonic() - started)
    return json.loads(out)


def main(argv: list[str] | None = None) -> None:
    """Command-line grader, so grading can run as another user or in a container."""
    parser = argparse.ArgumentParser(
        prog="python -m ib_extension.grading.grader",
        description="Grade a notebook against a challenge; print the result as JSON.",
    )
    parser.add_argument("notebook", nargs="?", help="the submitted .ipynb file, or - for stdin")
    parser.add_argument("challenge", nargs="?", help="the challenge file (.md)")
    parser.add_argument(
        "--request",
        action="store_true",
        help='read {"notebook", "challenge" (file text), limits...} as JSON from stdin',
    )
    parser.add_argument("--timeout-seconds", type=float, default=60)
    parser.add_argument("--cell-timeout-seconds", type=float, default=None)
    parser.add_argument("--memory-mb", type=int, default=1024)
    args = parser.parse_args(argv)
    if args.request == bool(args.notebook and args.challenge):
        parser.error("give either NOTEBOOK and CHALLENGE, or --request")
    try:
        if args.request:
            request = json.loads(sys.stdin.read())
            notebook, challenge_text, source = request["notebook"], request["challenge"], "request"
            limits = {key: request[key] for key in LIMITS if request.get(key) is not None}
            isolation = request.get("isolation", "sandbox")
            limits["isolation"] = (Sandbox(**isolation) if isinstance(isolation, dict)
                                   else isolation)
        else:
            text = (
                sys.stdin.read() if args.notebook == "-" else Path(args.notebook).read_text("utf-8")
            )
            notebook, source = json.loads(text), args.challenge
            challenge_text = Path(args.challenge).read_text("utf-8")
            limits = {key: getattr(args, key) for key in LIMITS if getattr(args, key) is not None}
        candidate_cells(notebook)  # refuses a notebook without cells
        challenge = parse_challenge(challenge_text, source)
    except (OSError, ValueError, KeyError, TypeError) as e:  # ValueError covers bad JSON
        parser.exit(2, f"error: {e}\n")
    try:
        result = grade(notebook, challenge, **limits)
    except SandboxUnavailable as e:
        parser.exit(3, f"error: not graded: {e}\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
