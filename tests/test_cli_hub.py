"""`ib hub` and `ib serve` on the command line, without starting a hub: settings passed
through as a Jupyter server takes them (and refused before anything starts when wrong),
the secrets file, the refusals `ib hub` makes up front, and what it says about isolation.
(A real hub: tests/test_hub.py.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from helpers import free_port

from ib_extension import cli
from ib_extension.cli import hub as hubcli


def ib(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY", "IB_LLM_BASE_URL", "IB_TOKEN")}
    return subprocess.run([sys.executable, "-m", "ib_extension.cli", *args], env=env or clean,
                          capture_output=True, text=True, timeout=120)


def test_ibextension_settings_pass_through_checked():
    assert cli.settings_argv(["--IBExtension.completion_cap=800",
                              "--IBExtension.models=a"]) == [
        "--IBExtension.completion_cap=800", "--IBExtension.models=a"]
    with pytest.raises(ValueError, match="no setting 'completion_kap'"):
        cli.settings_argv(["--IBExtension.completion_kap=800"])
    with pytest.raises(ValueError, match="completion_cap=lots"):
        cli.settings_argv(["--IBExtension.completion_cap=lots"])
    with pytest.raises(ValueError, match="--IBExtension.<setting>=<value>"):
        cli.settings_argv(["--IBExtension.completion_cap", "800"])


@pytest.mark.parametrize("command", ["serve", "hub"])
def test_a_wrong_setting_stops_the_command_with_a_sentence(command, tmp_path):
    out = ib(command, "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
             "--llm-base-url", "http://127.0.0.1:9/v1", "--IBExtension.tick_seconds=soon")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: --IBExtension.tick_seconds=soon")
    assert not (tmp_path / "d").exists()  # refused before anything was made


def test_other_unknown_arguments_are_refused(tmp_path):
    out = ib("session", "list", "--url", "http://x", "--token", "t", "--IBExtension.x=1")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


def test_the_env_file_is_read_only_when_private(tmp_path, monkeypatch):
    secrets_file = tmp_path / "service.env"
    secrets_file.write_text("# the service's secrets\nIB_TEST_SECRET=s3cret=with=equals\n")
    secrets_file.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        cli.load_env_file(str(secrets_file))
    secrets_file.chmod(0o600)
    monkeypatch.delenv("IB_TEST_SECRET", raising=False)
    cli.load_env_file(str(secrets_file))
    assert os.environ.pop("IB_TEST_SECRET") == "s3cret=with=equals"
    secrets_file.write_text("NOT A PAIR\n")
    with pytest.raises(ValueError, match="line 1: expected KEY=VALUE"):
        cli.load_env_file(str(secrets_file))


def test_hub_needs_a_provider(tmp_path):
    out = ib("hub", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: No LLM provider") and "--demo" in out.stderr


def test_hub_refuses_a_taken_port_naming_what_it_is_for(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base = taken.getsockname()[1] - 2  # the hub's internal API would need it
        out = ib("hub", "--port", str(base), "--demo", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert f"Port {base + 2} (the hub's internal API) is in use" in out.stderr


def test_not_root_says_plainly_that_candidates_are_not_isolated(capsys, tmp_path):
    args = SimpleNamespace(port=8000, ip="127.0.0.1", public_url="", data_dir=str(tmp_path),
                           ib_settings=[])
    hubcli.print_banner(args, "http://127.0.0.1:8000", "pw", None, [], as_root=False,
                        demo_model=True, cfg=None, seconds=1.0)
    out = capsys.readouterr().out
    assert "NOT ISOLATED" in out and str(tmp_path) in out
    assert "other candidates' workspaces" in out
    hubcli.print_banner(args, "http://127.0.0.1:8000", "pw", None, [], as_root=True,
                        demo_model=True, cfg=None, seconds=1.0)
    assert "its own unprivileged system user" in capsys.readouterr().out
