"""Grading through real kernels: correct and wrong submissions, and hostile ones
(endless loops, reading secrets from the environment, floods of output, memory)."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from helpers import SPY, graded_notebook, reported, wait_for

from ib_extension.api.challenges import Challenge, load_library
from ib_extension.api.resources import candidate_template
from ib_extension.grading.grader import (
    ENV_ALLOWLIST,
    candidate_cells,
    grade,
    grade_in_subprocess,
)
from ib_extension.grading.kernel import run_tests

notebook = graded_notebook
CHALLENGE_DIR = Path(__file__).resolve().parent.parent / "challenges"
CHALLENGES = load_library([CHALLENGE_DIR])
MERGE = CHALLENGES.get("merge-intervals")
ALL_TESTS = MERGE.visible_test_names + MERGE.hidden_test_names
SET_BY_GRADER = {"HOME", "TMPDIR", "MPLBACKEND", "PYTHONDONTWRITEBYTECODE", "MALLOC_ARENA_MAX"}
SET_BY_JUPYTER = {  # jupyter_client's launcher and ipykernel add these themselves
    "JPY_PARENT_PID",
    "PYDEVD_USE_FRAME_EVAL",
    "TERM",
    "CLICOLOR",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "PAGER",
    "GIT_PAGER",
}


def in_process(code: str, challenge: Challenge) -> dict[str, dict]:
    namespace: dict = {}
    exec(code, namespace)
    groups = [
        ("<visible tests>", challenge.visible_tests, True),
        ("<hidden tests>", challenge.hidden_tests, False),
    ]
    return {r["name"]: r for r in run_tests(namespace, groups, timeout_seconds=5)}


@pytest.mark.parametrize("challenge", list(CHALLENGES), ids=lambda c: c.id)
def test_every_reference_solution_scores_one_in_a_kernel(challenge):
    result = grade(notebook(challenge.reference_solution), challenge, timeout_seconds=60)
    assert (result["score"], result["error"]) == (1.0, None), result


def test_correct_submission_scores_one():
    submission = notebook(
        ("from ib_extension.candidate.panel import ChatPanel  # template cell, not graded", ["ib-setup"]),
        MERGE.reference_solution,
        "merge_intervals([[1, 2]])  # the candidate's own check",
    )

    def server_handler(signum, frame):  # stands for a Jupyter server's own handler
        pass

    previous = signal.signal(signal.SIGTERM, server_handler)
    try:
        result = grade(submission, MERGE, timeout_seconds=30)
        assert signal.getsignal(signal.SIGTERM) is server_handler  # nbclient's reset undone
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert json.loads(json.dumps(result)) == result
    assert (result["score"], result["passed"], result["total"]) == (
        1.0,
        len(ALL_TESTS),
        len(ALL_TESTS),
    )
    assert [t["name"] for t in result["tests"]] == ALL_TESTS
    assert [t["visible"] for t in result["tests"]] == [
        n in MERGE.visible_test_names for n in ALL_TESTS
    ]
    assert result["error"] is None and result["cell_errors"] == []
    assert result["output_truncated"] is False
    assert 0 < result["duration_seconds"] < 30


def test_wrong_submission_fails_with_the_same_messages_as_in_process():
    # Forgets that touching intervals merge, and a scratch cell raises.
    wrong = MERGE.reference_solution.replace("start <= merged[-1][1]", "start < merged[-1][1]")
    result = grade(notebook(wrong, "1 / 0"), MERGE, timeout_seconds=30)
    expected = in_process(wrong, MERGE)
    assert 0 < result["score"] < 1
    assert {t["name"]: t for t in result["tests"]} == expected
    failed = [t for t in result["tests"] if not t["passed"]]
    assert failed and all("failed; left side is" in t["message"] for t in failed)
    assert result["cell_errors"] == [{"cell": 3, "message": "ZeroDivisionError: division by zero"}]
    assert result["error"] == "Cell 3 raised ZeroDivisionError: division by zero."


def test_code_that_fails_at_import_still_gets_a_result():
    broken = "import no_such_module_here\n\n" + MERGE.reference_solution
    result = grade(notebook(broken), MERGE, timeout_seconds=30)
    assert result["score"] == 0 and result["total"] == len(ALL_TESTS)
    assert all(
        "NameError: name 'merge_intervals' is not defined" in t["message"] for t in result["tests"]
    )
    assert (
        result["error"]
        == "Cell 2 raised ModuleNotFoundError: No module named 'no_such_module_here'."
    )


def test_endless_loops_are_interrupted_and_reported_as_timeouts():
    loops_on_empty = MERGE.reference_solution.replace(
        "    merged = []", "    while not intervals:\n        pass\n    merged = []"
    )
    started = time.monotonic()
    result = grade(
        notebook(loops_on_empty, "while True:\n    pass"),
        MERGE,
        timeout_seconds=20,
        cell_timeout_seconds=1.5,
    )
    assert time.monotonic() - started < 20
    assert result["cell_errors"] == [
        {"cell": 3, "message": "timed out after 1.5 s and was interrupted"}
    ]
    by_name = {t["name"]: t for t in result["tests"]}
    assert by_name["test_empty"] == {
        "name": "test_empty",
        "visible": True,
        "passed": False,
        "message": "timed out after 1.5 s",
    }
    assert result["passed"] == len(ALL_TESTS) - 1


def test_loop_that_ignores_interrupts_ends_at_the_overall_limit():
    stubborn = (
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n    try:\n        sum(range(10**6))\n    except BaseException:\n        pass"
    )
    started = time.monotonic()
    result = grade(
        notebook(MERGE.reference_solution, stubborn),
        MERGE,
        timeout_seconds=5,
        cell_timeout_seconds=2,
    )
    assert time.monotonic() - started < 5 + 10  # the limit, plus kernel start and kill
    assert result["error"] == "The grading time limit of 5 s ran out."
    assert result["score"] == 0
    assert all(
        t["message"] == "not run: the grading time limit of 5 s ran out." for t in result["tests"]
    )


def test_graded_code_cannot_see_the_graders_secrets(monkeypatch, tmp_path):
    secrets = {
        "OPENAI_API_KEY": "sk-fake-provider-key",
        "IB_LLM_API_KEY": "fake-llm-key",
        "IB_TOKEN": "fake-interviewer-token",
        "JUPYTER_TOKEN": "fake-jupyter-token",
        "AWS_SECRET_ACCESS_KEY": "fake-aws-secret",
        "PYTHONPATH": str(tmp_path),
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    spy = SPY + (
        f"values = {list(secrets.values())!r}\n"
        "text = json.dumps(dict(os.environ))\n"
        "raise Report(json.dumps({'names': sorted(os.environ), 'home': os.environ['HOME'],\n"
        "                         'leaked': [v for v in values if v in text]}))"
    )
    result = grade(notebook(MERGE.reference_solution, spy), MERGE, timeout_seconds=30)
    assert result["score"] == 1.0
    env = reported(result, 3)
    assert env["leaked"] == []
    assert not set(secrets) & set(env["names"])
    assert not [name for name in env["names"] if name.startswith("IB_")]
    assert env["home"] != str(Path.home()) and "ib-grade-" in env["home"]
    set_by_sandbox = {"PWD"}  # bubblewrap's --chdir
    assert set(env["names"]) - set(ENV_ALLOWLIST) - SET_BY_GRADER - SET_BY_JUPYTER \
        - set_by_sandbox == set()


def test_subprocess_grader_keeps_secrets_out_of_the_kernel_and_its_parent(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-provider-key")
    monkeypatch.setenv("IB_TOKEN", "fake-interviewer-token")
    spy = SPY + (
        "seen = {}\n"
        "for pid in sorted({os.getppid(), 1}):\n"
        "    try:\n"
        "        seen[pid] = open(f'/proc/{pid}/environ', 'rb').read().decode()\n"
        "    except OSError as e:\n"
        "        seen[pid] = type(e).__name__\n"
        "seen['own'] = repr(dict(os.environ))\n"
        "secrets = ('OPENAI_API_KEY', 'sk-fake-provider-key', 'IB_TOKEN', 'fake-interviewer-token')\n"
        "raise Report(json.dumps({'read': len(seen), 'leaked': [s for s in secrets\n"
        "                         if any(s in text for text in seen.values())]}))"
    )
    result = asyncio.run(
        grade_in_subprocess(notebook(MERGE.reference_solution, spy), MERGE, timeout_seconds=30)
    )
    assert result["score"] == 1.0
    assert reported(result, 3) == {"read": 2, "leaked": []}


def test_subprocess_grader_failure_is_a_result_not_an_exception():
    result = asyncio.run(
        grade_in_subprocess(notebook("x = 1"), MERGE, command_prefix=["false", "--"])
    )
    assert result["score"] == 0 and result["total"] == len(ALL_TESTS)
    assert result["error"].startswith("The grader process failed with exit status 1")



def test_cancelling_subprocess_grading_stops_the_grader_and_its_kernel():
    spin = "import time\nwhile True:\n    time.sleep(0.01)"
    me = psutil.Process()

    def grading_processes() -> list[psutil.Process]:
        found = []
        for p in me.children(recursive=True):
            try:
                if any("ib_grading_kernel" in part or "grading.grader" in part
                       for part in p.cmdline()):
                    found.append(p)
            except psutil.NoSuchProcess:
                continue
        return found

    async def cancel_once_running():
        task = asyncio.ensure_future(grade_in_subprocess(notebook(spin), MERGE, timeout_seconds=60))
        while not any("ib_grading_kernel" in " ".join(p.cmdline()) for p in grading_processes()):
            await asyncio.sleep(0.05)
        running = grading_processes()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return running

    running = asyncio.run(cancel_once_running())
    assert len(running) >= 2  # the grader, and the sandbox running its kernel
    wait_for(lambda: all(process_gone(p.pid) for p in running), "the grading to stop", 20.0)


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except FileNotFoundError:
        return True
    return state in "ZX"  # exited, perhaps not reaped yet


def test_huge_output_is_truncated_and_grading_finishes():
    flood = 'for _ in range(200):\n    print("x" * 1_000_000)\nprint("y" * 100_000_000)'
    result = grade(notebook(MERGE.reference_solution, flood), MERGE, timeout_seconds=30)
    assert result["score"] == 1.0 and result["error"] is None
    assert result["output_truncated"] is True
    assert result["duration_seconds"] < 15


def test_memory_is_limited():
    hog = "hog = bytearray(2 * 1024 * 1024 * 1024)"
    result = grade(
        notebook(MERGE.reference_solution, hog), MERGE, timeout_seconds=30, memory_mb=512
    )
    assert result["cell_errors"] == [{"cell": 3, "message": "MemoryError"}]
    assert result["score"] == 1.0


def test_command_line_grader_reads_stdin_and_prints_json(tmp_path):
    wrong = MERGE.starter_code
    submission = json.dumps(notebook(wrong))
    command = [
        sys.executable,
        "-m",
        "ib_extension.grading.grader",
        "-",
        str(CHALLENGE_DIR / "merge-intervals.md"),
    ]
    done = subprocess.run(command, input=submission, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["score"] == 0 and result["total"] == len(ALL_TESTS)
    assert all("NotImplementedError" in t["message"] for t in result["tests"])


@pytest.mark.parametrize(
    ("notebook_text", "challenge_file", "problem"),
    [
        ("{}", CHALLENGE_DIR / "merge-intervals.md", "has no 'cells' list"),
        ('{"cells": []}', Path("nowhere.md"), "No such file or directory: 'nowhere.md'"),
        ("{not json", CHALLENGE_DIR / "merge-intervals.md", "Expecting property name"),
    ],
)
def test_command_line_grader_explains_bad_input(tmp_path, notebook_text, challenge_file, problem):
    (tmp_path / "nb.ipynb").write_text(notebook_text)
    command = [
        sys.executable,
        "-m",
        "ib_extension.grading.grader",
        str(tmp_path / "nb.ipynb"),
        str(challenge_file),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and problem in done.stderr


# --- without kernels ----------------------------------------------------------


def test_candidate_cells_skip_template_cells_and_blank_ones():
    submission = notebook(
        ("setup()", ["ib-setup"]), "a = 1", ("check()", ["ib-tests"]), "   ", "b = 2"
    )
    assert candidate_cells(submission) == [(3, "a = 1"), (6, "b = 2")]
    by_role = nbformat.v4.new_code_cell("panel()", metadata={"ib": {"role": "panel"}})
    submission["cells"].append(json.loads(json.dumps(by_role)))
    assert candidate_cells(submission) == [(3, "a = 1"), (6, "b = 2")]


def test_a_panel_cell_is_not_graded():
    # The template needs no panel cell (the workspace shows the panel by itself) and its
    # code cell is graded; notebooks from older templates still hold one, never graded.
    template = json.loads(candidate_template().read_text())
    assert candidate_cells(template), "the template should hold a cell for code"
    panel_cell = {"cell_type": "code", "source": "panel = show_panel()", "outputs": [],
                  "metadata": {"ib": {"role": "panel"}, "tags": ["ib-panel"]}}
    older = {**template, "cells": [panel_cell, *template["cells"]]}
    graded = [number for number, _ in candidate_cells(older)]
    assert graded and 1 not in graded


@pytest.mark.parametrize("bad", [{}, {"cells": "nope"}, [], None])
def test_malformed_notebook_is_refused_with_a_sentence(bad):
    with pytest.raises(ValueError, match="has no 'cells' list"):
        candidate_cells(bad)


def test_run_tests_timeout_cannot_be_swallowed_by_except_exception():
    code = "def spin():\n    while True:\n        try:\n            pass\n        except Exception:\n            pass\n"
    tests = "def test_spin():\n    spin()\n"
    namespace: dict = {}
    exec(code, namespace)
    started = time.monotonic()
    [result] = run_tests(namespace, [("<visible tests>", tests, True)], timeout_seconds=0.2)
    assert time.monotonic() - started < 2
    assert result == {
        "name": "test_spin",
        "visible": True,
        "passed": False,
        "message": "timed out after 0.2 s",
    }


def test_run_tests_explains_failed_comparisons_and_errors():
    tests = (
        "def test_eq():\n    assert double(2) == 5\n"
        "def test_in():\n    assert 4 not in [double(x) for x in range(3)], 'no four'\n"
        "def test_error():\n    double(None)\n"
        "def test_ok():\n    assert double(1) == 2\n"
        "def test_exit():\n    raise SystemExit(3)\n"
    )
    namespace: dict = {}
    exec("def double(x):\n    return x * 2\n", namespace)
    results = {
        r["name"]: r for r in run_tests(namespace, [("<t>", tests, False)], timeout_seconds=5)
    }
    assert (
        results["test_eq"]["message"]
        == "assert double(2) == 5 failed; left side is 4, right side is 5"
    )
    assert results["test_in"]["message"] == (
        "assert 4 not in [double(x) for x in range(3)], 'no four' failed; no four; "
        "left side is 4, right side is [0, 2, 4]"
    )
    assert results["test_error"]["message"] == (
        "TypeError: unsupported operand type(s) for *: 'NoneType' and 'int' (in: double(None))"
    )
    assert results["test_exit"]["message"] == "SystemExit: 3 (in: raise SystemExit(3))"
    assert results["test_ok"] == {
        "name": "test_ok",
        "visible": False,
        "passed": True,
        "message": "",
    }


def test_run_tests_keeps_an_outer_alarm_pending():
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: None)
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        [result] = run_tests({}, [("<t>", "def test_ok():\n    pass\n", True)], timeout_seconds=5)
        assert result["passed"]
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < remaining <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
