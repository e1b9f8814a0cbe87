"""The kernel side of grading.

- `main`: the launcher that starts ipykernel under resource limits, with
  output capped (`apply_limits`, `limit_output`);
- `report_tests`: what the grader runs in that kernel after the candidate's
  cells; it runs the tests with `run_tests` and publishes each result;
- `run_tests`: runs `test_*` functions with a time limit each and readable
  failure messages; tests/test_challenges.py uses it in-process too.

The grader (grader.py) starts the kernel, in its sandbox (sandbox.py), with

    python -I .../ib_grading_kernel.py --memory-mb 1024 --cpu-seconds 70 -- -f {connection_file}

`-I` keeps PYTHON* variables, the user's site-packages and this file's folder
out of the kernel's import path. This file imports nothing of ib_extension: the
sandbox maps in this one file, not the package.
"""

from __future__ import annotations

import argparse
import ast
import operator
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator

MESSAGE_LIMIT = 500  # characters of one test's failure message
RESULT_MIME = "application/vnd.interview-buddy.test-result+json"
TRUNCATION_NOTICE = "[output truncated after {} characters]"
KERNEL_MODULE = "ib_grading_kernel"  # the name graded code imports this launcher by


class TestTimeout(BaseException):
    """Raised in a test that runs too long. A BaseException, so that candidate
    code catching `Exception` cannot swallow it."""

    __test__ = False


def apply_limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    """Cap this process: address space, CPU time, size of any file written, no core dumps."""
    limits = {
        resource.RLIMIT_AS: memory_mb * 1024 * 1024,
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_FSIZE: file_mb * 1024 * 1024,
        resource.RLIMIT_CORE: 0,
    }
    for which, value in limits.items():
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    # Writing past RLIMIT_FSIZE should fail the write, not kill the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


_COMPARISONS = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", lambda a, b: a in b),
    ast.NotIn: ("not in", lambda a, b: a not in b),
    ast.Is: ("is", operator.is_),
    ast.IsNot: ("is not", operator.is_not),
}
_OPERATORS = dict(_COMPARISONS.values())
_COMPARE = "__ib_compare__"


class _ExplainComparisons(ast.NodeTransformer):
    """Rewrite `assert a == b` as `assert __ib_compare__(a, "==", b)`, which
    evaluates each side once and remembers both values when the check fails."""

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and type(test.ops[0]) in _COMPARISONS
        ):
            symbol = ast.Constant(_COMPARISONS[type(test.ops[0])][0])
            call = ast.Call(
                ast.Name(_COMPARE, ast.Load()), [test.left, symbol, test.comparators[0]], []
            )
            node.test = ast.copy_location(call, test)
        return node


class _Comparison:
    """The `__ib_compare__` function; keeps the values of the last failed comparison."""

    def __init__(self):
        self.failed: tuple | None = None

    def __call__(self, left, symbol, right):
        outcome = _OPERATORS[symbol](left, right)
        if not outcome:
            self.failed = (left, symbol, right)
        return outcome

    def explain(self) -> str:
        if self.failed is None:
            return ""
        left, symbol, right = self.failed
        return f"left side is {_short_repr(left)}, right side is {_short_repr(right)}"


def _short_repr(value, limit: int = 160) -> str:
    try:
        text = repr(value)
    except Exception as error:  # a candidate's __repr__ may itself be broken
        text = f"<unprintable {type(value).__name__}: {error}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _statement_at(tree: ast.AST, lineno: int) -> ast.stmt | None:
    """The innermost statement covering `lineno`, not counting function definitions."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef | ast.ClassDef):
            if node.lineno <= lineno <= node.end_lineno:
                if best is None or node.end_lineno - node.lineno <= best.end_lineno - best.lineno:
                    best = node
    return best


def _failure_message(
    error: BaseException, label: str, tree: ast.AST, source: str, comparison: _Comparison
) -> str:
    lines = [tb.tb_lineno for tb in _frames(error) if tb.tb_frame.f_code.co_filename == label]
    statement = _statement_at(tree, lines[-1]) if lines else None
    text = " ".join((ast.get_source_segment(source, statement) or "").split()) if statement else ""
    if isinstance(error, AssertionError) and isinstance(statement, ast.Assert):
        details = [str(error), comparison.explain()]
        message = f"{text} failed" + "".join(f"; {d}" for d in details if d)
    else:
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if text:
            message += f" (in: {text})"
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


def _frames(error: BaseException):
    tb = error.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


class _Alarm:
    """Raise TestTimeout in the main thread after `seconds` (no-op elsewhere).
    An alarm already pending (pytest-timeout's, say) is re-armed afterwards."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = seconds > 0 and threading.current_thread() is threading.main_thread()

    def _fire(self, signum, frame):
        raise TestTimeout

    def __enter__(self):
        if self.armed:
            self.previous_handler = signal.signal(signal.SIGALRM, self._fire)
            self.previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous_handler)
            if self.previous_delay:
                left = self.previous_delay - (time.monotonic() - self.started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
        return False


def run_tests(
    namespace: dict,
    groups: list[tuple[str, str, bool]],
    timeout_seconds: float,
    scope: dict | None = None,
) -> Iterator[dict]:
    """Run the `test_*` functions of each (label, source, visible) group against
    `namespace` (the candidate's globals, which the tests read), yielding one
    result dict per test: name, visible, passed, message.

    The groups share one copy of the namespace (`scope`, made here unless given), in
    order, so hidden tests may use helpers defined by the visible tests."""
    scope = dict(namespace) if scope is None else scope
    comparison = scope[_COMPARE] = _Comparison()
    for label, source, visible in groups:
        if not source.strip():
            continue
        tree = ast.parse(source, label)
        names = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        ]
        # Parsed again because the rewrite changes the tree; messages quote `tree`.
        rewritten = ast.fix_missing_locations(_ExplainComparisons().visit(ast.parse(source)))
        code = compile(rewritten, label, "exec")
        try:
            with _Alarm(timeout_seconds):
                exec(code, scope)
        except (Exception, SystemExit, TestTimeout) as error:
            problem = (
                "timed out"
                if isinstance(error, TestTimeout)
                else f"{type(error).__name__}: {error}"
            )
            for name in names:
                yield {
                    "name": name,
                    "visible": visible,
                    "passed": False,
                    "message": f"the tests could not be set up: {problem}",
                }
            continue
        for name in names:
            comparison.failed = None
            try:
                with _Alarm(timeout_seconds):
                    scope[name]()
            except TestTimeout:
                message = f"timed out after {timeout_seconds:g} s"
            except (Exception, SystemExit) as error:  # not KeyboardInterrupt: the grader's stop
                message = _failure_message(error, label, tree, source, comparison)
            else:
                message = None
            yield {
                "name": name,
                "visible": visible,
                "passed": message is None,
                "message": message or "",
            }


def limit_output(max_chars: int) -> None:
    """Before the kernel starts: stop forwarding printed or displayed output past
    `max_chars` in total, so a runaway print cannot flood the grader.

    The classes are patched, not the stream objects, and before any cell runs:
    IPython wraps each stream's `write` around every cell and then puts back the
    method it found, which would undo a later or per-object patch."""
    from ipykernel.iostream import OutStream
    from ipykernel.zmqshell import ZMQDisplayPublisher

    left = [max_chars]

    def take(size: int) -> bool:
        if left[0] <= 0:
            return False
        left[0] -= size
        return True

    write = OutStream.write

    def write_within_limit(stream, text):
        if left[0] > 0 and len(text) > left[0]:
            text = text[: left[0]] + "\n" + TRUNCATION_NOTICE.format(max_chars) + "\n"
        return write(stream, text) if take(len(text)) else len(text)

    publish = ZMQDisplayPublisher.publish

    def publish_within_limit(publisher, data, *args, **kwargs):
        if RESULT_MIME in data or take(sum(len(str(value)) for value in data.values())):
            publish(publisher, data, *args, **kwargs)

    OutStream.write = write_within_limit
    ZMQDisplayPublisher.publish = publish_within_limit


def report_tests(namespace: dict, groups: list, timeout_seconds: float, nonce: str) -> dict:
    """In the kernel: run the tests and publish each result as it finishes, so
    the results reached before a time-out are not lost. Returns the tests' scope, for
    the next group to run in (the grader sends hidden tests in a later cell)."""
    from IPython.display import publish_display_data

    scope = dict(namespace)
    for result in run_tests(namespace, groups, timeout_seconds, scope):
        publish_display_data({RESULT_MIME: result | {"nonce": nonce}})
    return scope


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--file-mb", type=int, default=64)
    parser.add_argument("--output-chars", type=int, default=1_000_000)
    parser.add_argument("kernel_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    apply_limits(args.memory_mb, args.cpu_seconds, args.file_mb)
    limit_output(args.output_chars)
    # The grader's harness cells import this module by this name: IPython takes over
    # `__main__`, and in the sandbox the ib_extension package is not there to import.
    sys.modules.setdefault(KERNEL_MODULE, sys.modules[__name__])

    from ipykernel.kernelapp import launch_new_instance

    kernel_args = args.kernel_args[1:] if args.kernel_args[:1] == ["--"] else args.kernel_args
    launch_new_instance(argv=kernel_args)


if __name__ == "__main__":
    main()
