"""`ib export` against a live service (`ib serve` and the demo model, really started)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import jsonschema
import nbformat
import pytest
from replay_sessions import QUESTION, play

from ib_extension.cli import main
from ib_extension.cli.export import Progress
from ib_extension.review import export

TOKEN_SHAPES = re.compile(r"ibc_[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{16,}")


@pytest.fixture(scope="module")
def live(live):
    live.played = [play(live, candidate="Grace Hopper"), play(live, candidate="Alan Turing"),
                   play(live, candidate="Edsger Dijkstra", submit=False)]
    return live


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every file the tests below export, checked for secrets at the end."""
    return tmp_path_factory.mktemp("exports")


def ib_export(live, *args) -> int:
    return main(["export", *args, "--url", live.url, "--token", live.token])


def secrets_of(live) -> list[str]:
    return [live.token] + [p["candidate_token"] for p in live.played]


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_one_session_in_each_format(live, written, fmt, capsys):
    sid = live.played[0]["id"]
    path = written / f"one.{fmt}"
    assert ib_export(live, sid, "--format", fmt, "-o", str(path)) == 0
    assert capsys.readouterr().out.strip() == str(path)
    text = path.read_text(encoding="utf-8")
    if fmt == "ipynb":
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata[export.NAMESPACE]["session_id"] == sid
    elif fmt == "json":
        doc = json.loads(text)
        jsonschema.validate(doc, export.schema())
        assert doc["session"]["id"] == sid
        assert [m["role"] for m in doc["messages"]] == ["user", "assistant"]
    elif fmt == "csv":
        (row,) = list(csv.DictReader(io.StringIO(text)))
        assert row["session_id"] == sid
    elif fmt == "html":
        assert text.lstrip().lower().startswith("<!doctype html")
    else:
        assert "Grace Hopper" in text
    assert "<script>alert(1)" not in text or fmt in ("json", "csv")  # inert where it renders


def test_an_existing_folder_takes_the_session_id_as_file_name(live, written):
    sid = live.played[1]["id"]
    folder = written / "into-folder"
    folder.mkdir()
    assert ib_export(live, sid, "--format", "md", "-o", str(folder)) == 0
    assert [p.name for p in folder.iterdir()] == [f"{sid}.md"]


def test_batch_exports_every_matching_session_with_progress(live, written, capsys):
    folder = written / "completed"
    completed = {s["id"] for s in live.client.list_sessions(status="completed")["sessions"]}
    assert len(completed) == 2  # the third session was never submitted
    assert ib_export(live, "--all", "--status", "completed", "--format", "ipynb",
                     "-o", str(folder)) == 0
    assert {p.name for p in folder.iterdir()} == {f"{sid}.ipynb" for sid in completed}
    for path in folder.iterdir():
        nbformat.validate(nbformat.read(path, as_version=4))
    err = capsys.readouterr().err
    assert "2/2" in err and "2 of 2 session(s) exported" in err


def test_batch_search_uses_the_conversation(live, written):
    folder = written / "searched"
    word = "fizzbuzz"
    assert word in QUESTION.lower()
    assert ib_export(live, "--all", "--q", word, "--format", "json", "-o", str(folder)) == 0
    assert len(list(folder.iterdir())) == 3
    assert ib_export(live, "--all", "--q", "no-such-words-anywhere", "--format", "json",
                     "-o", str(written / "nothing")) == 0
    assert list((written / "nothing").iterdir()) == []


def test_batch_csv_also_writes_one_table_of_every_session(live, written):
    folder = written / "csv"
    assert ib_export(live, "--all", "--format", "csv", "-o", str(folder)) == 0
    rows = list(csv.DictReader((folder / "all-sessions.csv").open(encoding="utf-8")))
    assert sorted(r["session_id"] for r in rows) == sorted(p["id"] for p in live.played)
    for row in rows:
        (alone,) = csv.DictReader((folder / f"{row['session_id']}.csv").open(encoding="utf-8"))
        assert alone == row


def test_the_ib_command_runs_the_batch_as_a_process(live, written):
    folder = written / "process"
    done = subprocess.run(
        [sys.executable, "-m", "ib_extension.cli", "export", "--all", "--format", "md",
         "-o", str(folder), "--url", live.url],
        env={**os.environ, "IB_TOKEN": live.token}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(list(folder.glob("*.md"))) == 3
    assert "[" + "#" * Progress.WIDTH + "] 3/3" in done.stderr


@pytest.mark.parametrize("args, code, says", [
    (["s_doesnotexist", "-f", "json"], 1, "no session"),
    (["--all", "s_abc"], 2, "not both"),
    ([], 2, "SESSION_ID"),
    (["s_abc", "--status", "completed"], 2, "--all"),
])
def test_bad_requests_say_what_is_wrong(live, written, capsys, args, code, says):
    if args and args[0] == "s_doesnotexist":
        args = [*args, "-o", str(written / "never.json")]
    assert ib_export(live, *args) == code
    assert says.lower() in capsys.readouterr().err.lower()
    assert not (written / "never.json").exists()


def test_without_a_token_the_command_says_how_to_give_one(live, capsys, monkeypatch):
    monkeypatch.delenv("IB_TOKEN", raising=False)
    assert main(["export", live.played[0]["id"], "--url", live.url, "--token", ""]) == 2
    assert "IB_TOKEN" in capsys.readouterr().err


def test_a_missing_folder_is_named_before_anything_is_fetched(live, written, capsys):
    missing = written / "no-such-folder" / "out.md"
    assert ib_export(live, live.played[0]["id"], "-f", "md", "-o", str(missing)) == 2
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err


def test_batch_into_a_file_is_refused(live, written, capsys):
    a_file = written / "a-file.txt"
    a_file.write_text("x")
    assert ib_export(live, "--all", "-o", str(a_file)) == 2
    assert "is a file" in capsys.readouterr().err


def test_progress_redraws_in_place_on_a_terminal_and_not_in_a_log():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log, tty = io.StringIO(), Terminal()
    for out in (log, tty):
        bar = Progress(2, out)
        bar.show("s_1")
        bar.show("s_2")
        bar.done()
    half = Progress.WIDTH // 2
    assert log.getvalue().splitlines() == [
        f"[{'#' * half}{'.' * (Progress.WIDTH - half)}] 1/2 s_1",
        f"[{'#' * Progress.WIDTH}] 2/2 s_2"]
    assert "\r" not in log.getvalue() and tty.getvalue().count("\r") == 2


def test_interviewers_get_the_answer_key_and_shared_files_do_not(live, written):
    hidden = live.client.challenge("merge-intervals")
    hidden_test = hidden["hidden_tests"].split("def ")[1].split("(")[0]
    sid = live.create_session(candidate_name="Ada", challenge_id="merge-intervals",
                              challenge_text=None, challenge_title=None)["id"]
    mine, shared = written / "interviewer.md", written / "shared.md"
    assert ib_export(live, sid, "--format", "md", "-o", str(mine)) == 0
    assert ib_export(live, sid, "--format", "md", "-o", str(shared), "--without-answer-key") == 0
    for path in (mine, shared):
        text = path.read_text(encoding="utf-8")
        assert text.index("## The challenge: Merge Intervals") < text.index("## Grading")
        assert "def test_merges_overlapping" in text  # the visible tests
    assert hidden_test in mine.read_text(encoding="utf-8")
    assert hidden_test not in shared.read_text(encoding="utf-8")
    assert "For interviewers only" not in shared.read_text(encoding="utf-8")


def test_no_export_holds_a_token_of_any_kind(live, written):
    """Runs last in this module: reads every file the tests above wrote."""
    files = [p for p in written.rglob("*") if p.is_file() and p.name != "a-file.txt"]
    assert len(files) >= 15
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in secrets_of(live):
            assert secret not in text, f"{path.name} holds a token"
        assert not TOKEN_SHAPES.search(text), f"{path.name} holds something shaped like a key"
