"""Graded code runs in a sandbox: no file, process, network or secret of the service is
there to reach, hidden tests cannot leak into what the candidate sees, and where no
sandbox can be made grading is refused rather than run unisolated.

Each spy cell reports what it found by raising `Report(json)`: a cell's error message is
the one channel graded code has back to the candidate."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import REPO, SPY, graded_notebook, reported

from ib_extension.api.challenges import load_library
from ib_extension.grading import sandbox as sandbox_module
from ib_extension.grading.grader import grade
from ib_extension.grading.sandbox import Sandbox, SandboxUnavailable, prepare
from ib_extension.service.sessions import candidate_grade

REPO_CHALLENGES = REPO / "challenges"
MERGE = load_library([REPO_CHALLENGES]).get("merge-intervals")
notebook = graded_notebook


def spy_reading(paths: list[str]) -> str:
    """A cell that tries to read or list each path and reports what it got."""
    return SPY + (
        f"got = {{}}\nfor path in {paths!r}:\n"
        "    try:\n"
        "        got[path] = (os.listdir(path)[:3] if os.path.isdir(path)\n"
        "                     else open(path, 'rb').read(200).decode(errors='replace'))\n"
        "    except OSError as e:\n"
        "        got[path] = type(e).__name__\n"
        "raise Report(json.dumps(got))"
    )


def test_graded_code_reads_no_file_outside_its_temporary_folder(tmp_path):
    secret = tmp_path / "service-data" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("a-world-readable-secret")
    secret.chmod(0o644)  # even a careless mode does not expose it
    paths = [str(secret), str(secret.parent), str(REPO_CHALLENGES), "/root", "/proc/1/environ",
             "/etc/passwd", "/home", str(Path(sys.prefix).parent)]
    result = grade(notebook(MERGE.reference_solution, spy_reading(paths)), MERGE,
                   timeout_seconds=30)
    got = reported(result, 3)
    assert result["score"] == 1.0
    readable = {path: value for path, value in got.items()
                if value not in ("FileNotFoundError", "PermissionError")}
    # /root exists only as the folder the Python installation is mapped under.
    assert set(readable) <= {"/root", str(Path(sys.prefix).parent)}, readable
    assert "a-world-readable-secret" not in json.dumps(got)
    assert not any(name in json.dumps(readable) for name in ("merge-intervals", ".ib-data"))


def test_graded_code_can_write_only_in_its_own_folders():
    cell = SPY + (
        "got = {}\n"
        "for path in (os.path.join(os.environ['HOME'], 'x'), '/tmp/x', '/usr/x', '/x'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        got[path] = 'written'\n"
        "    except OSError as e:\n"
        "        got[path] = type(e).__name__\n"
        "raise Report(json.dumps(got))"
    )
    got = list(reported(grade(notebook(cell), MERGE, timeout_seconds=30), 2).values())
    assert got[:2] == ["written", "written"] and "written" not in got[2:], got


def test_graded_code_sees_only_its_own_processes_and_no_network():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    cell = SPY + (
        "import socket\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "cmds = [open(f'/proc/{p}/cmdline', 'rb').read().decode(errors='replace') for p in pids]\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    net = 'connected'\n"
        "except OSError as e:\n"
        "    net = type(e).__name__\n"
        "raise Report(json.dumps({'pids': len(pids), 'pytest': any('pytest' in c for c in cmds),\n"
        "                         'uid': os.getuid(), 'net': net}))"
    )
    try:
        got = reported(grade(notebook(cell), MERGE, timeout_seconds=30), 2)
    finally:
        listening.close()
    assert got["pytest"] is False and got["pids"] < 10
    assert got["net"] != "connected"
    if os.geteuid() == 0:  # as root, the kernel is the dedicated unprivileged user
        assert got["uid"] == pwd.getpwnam(sandbox_module.DEFAULT_USER).pw_uid != 0


def test_hidden_tests_cannot_reach_a_message_the_candidate_sees():
    # The candidate's code wraps the harness: each time it runs, it reports every test,
    # visible ones included, with the tests it was given as the message.
    leak = (
        "import ib_grading_kernel as k\n"
        "from IPython.display import publish_display_data\n"
        "real = k.report_tests\n"
        "def report_tests(namespace, groups, timeout, nonce):\n"
        "    for name in " + repr(MERGE.visible_test_names + MERGE.hidden_test_names) + ":\n"
        "        publish_display_data({k.RESULT_MIME: {'name': name, 'passed': True,\n"
        "            'message': repr(groups)[:400], 'nonce': nonce}})\n"
        "    return real(namespace, groups, timeout, nonce)\n"
        "k.report_tests = report_tests\n"
    )
    result = grade(notebook(MERGE.reference_solution, leak), MERGE, timeout_seconds=30)
    shown = json.dumps(candidate_grade(result))
    assert "visible tests" in shown  # the wrapper did run and report
    for name in MERGE.hidden_test_names:
        assert name not in shown
    assert "[[1, 10], [2, 3]" not in shown  # a hidden test's data


def test_grading_is_refused_without_bubblewrap(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("setpriv", "useradd"):  # everything but bwrap
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    prepare.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap is not installed"):
            grade(notebook(MERGE.reference_solution), MERGE, timeout_seconds=30)
    finally:
        monkeypatch.undo()
        prepare.cache_clear()


def test_a_sandbox_that_cannot_start_is_refused_with_its_reason(tmp_path):
    broken = Sandbox(bwrap=str(tmp_path / "no-bwrap-here"), launcher=sandbox_module.__file__)
    with pytest.raises(SandboxUnavailable, match="bubblewrap could not start"):
        sandbox_module.probe(broken)


def test_the_unprivileged_sandbox_hides_the_service_files_too():
    """The shape used when the service is not root: bubblewrap through a user namespace,
    tried here as the `nobody` user with Debian's Python (this machine's own Python lives
    under /root, which nobody may enter)."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    with tempfile.TemporaryDirectory(prefix="ib-unprivileged-") as folder:
        got = _run_as_nobody(Path(folder))
    assert got["secret"] == "FileNotFoundError" and got["pids"] < 5


def _run_as_nobody(folder: Path) -> dict:
    folder.chmod(0o755)  # nobody must reach what is mapped in, and only that
    secret = folder / "secret.txt"
    secret.write_text("unprivileged-secret")
    secret.chmod(0o644)
    shared, home = folder / "shared", folder / "home"
    shared.mkdir()
    home.mkdir()
    shared.chmod(0o777)
    unprivileged = Sandbox(bwrap=shutil.which("bwrap"), launcher=sandbox_module.__file__,
                           python=("/usr",))
    program = ("import os, json\n"
               f"try:\n    s = open({str(secret)!r}).read()\nexcept OSError as e:\n"
               "    s = type(e).__name__\n"
               "print(json.dumps({'secret': s, 'pids': len([p for p in os.listdir('/proc') "
               "if p.isdigit()]), 'uid': os.getuid()}))")
    command = unprivileged.wrap(["/usr/bin/python3", "-I", "-c", program], shared=shared,
                                home=home)
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.defpath}, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
