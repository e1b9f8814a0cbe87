"""The interviewer's reads, the start-up and the exports on a big file: 10,000 sessions and
1,000,000 messages by default, against a 100-session file measured in the same run.

    python benchmarks/scale.py [--sessions 10000] [--messages 1000000] [--runs 30]
                               [--keep PATH] [--small-sessions 100]

It builds a DuckDB file with the real schema (the real `Store` runs the migrations) and
rows made by the real code (`Session.to_row()`, the gateway's `_message`, the events
`Service.emit` writes, encoded by the store's own `_encode`), inserted in bulk. A file
kept with `--keep` is reused when its size matches. Then it starts `ib serve` on the
file as a real process and times, over HTTP: the start-up (process start to the health
route answering), the session list (default, filtered, a late page), one session's
messages (a typical one and the biggest), history search (the list's `q`, which searches
the conversations), the feed poll, one session's events and record, and the exports of
the biggest session with `ib export` (.ipynb and .html, whole command and render only).
It prints p50/p95 next to the issue's target and the ratio to the small file. Nothing
is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import free_port, percentile, wait_up  # noqa: E402

from ib_extension.api import challenges  # noqa: E402
from ib_extension.service.budget import Ledger  # noqa: E402
from ib_extension.service.gateway import _message  # noqa: E402
from ib_extension.service.sessions import Session, hash_token, new_token  # noqa: E402
from ib_extension.service.store import (  # noqa: E402
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    SESSION_COLUMNS,
    Encoded,
    Store,
    _encode,
)

# Targets from issue 14 (milliseconds; start-up and exports in seconds).
TARGETS = {"session list": 20, "messages": 20, "history search": 20}
BIG = 1000  # messages in the biggest session (the one exported)
DAY = 86400.0
T0 = 1_735_689_600.0  # 2025-01-01: sessions run one after another from here

TOPICS = ["binary search", "a linked list", "dynamic programming", "the sliding window",
          "a hash map", "recursion", "a priority queue", "two pointers", "a trie",
          "graph traversal", "memoisation", "a stack", "interval merging", "bit tricks",
          "string parsing", "an LRU cache", "topological sort", "union-find"]
QUESTIONS = [
    "How do I use {t} here? My loop over {n} items is too slow and times out on the last test.",
    "Why does my version with {t} return None for the input of length {n}?",
    "Can you explain the idea behind {t} in two sentences? I keep mixing up the indices.",
    "Is there an off-by-one error in this? I get index {n} out of range:\n\n```python\n"
    "def solve(xs):\n    for i in range(len(xs) + 1):\n        print(xs[i])\n```",
    "What is the time complexity of {t} when the input has {n} elements?",
    "Give me a hint, not the answer: how would {t} help with this problem?",
]
REPLY_PARTS = [
    "The usual way is {t}: keep the invariant that everything left of `lo` is smaller than "
    "the target and everything right of `hi` is not, then shrink the range by half each step.",
    "Here is a sketch:\n\n```python\ndef solve(xs, k):\n    seen = {{}}\n    for i, x in "
    "enumerate(xs):\n        if k - x in seen:\n            return seen[k - x], i\n        "
    "seen[x] = i\n    return None\n```\n",
    "With {n} elements that is O(n log n) for the sort and O(n) for the pass, so the sort "
    "dominates; {t} does not change that.",
    "Check the boundary: `range(len(xs) + 1)` visits one index past the end. Use "
    "`range(len(xs))`, or iterate over the items directly.",
    "Think about what you would need to remember from the items you have already seen; "
    "{t} is one way to keep that small.",
    "A common mistake is mutating the list while iterating over it; copy it first or build "
    "a new list.",
    "Your tests cover the happy path; add the empty input, a single element and {n} equal "
    "elements.",
]


# ---- building the file -------------------------------------------------------------------
def _library() -> list[dict]:
    """The bundled challenges as a session holds them (Service._challenge_for)."""
    lib = challenges.load_library(challenges.default_dirs())
    keys = ("id", "title", "difficulty", "category", "statement", "starter_code",
            "visible_tests")
    return [{k: ch.public().get(k) for k in keys} for ch in lib]


def _session(i: int, rng: random.Random, messages: int, library: list[dict]) -> Session:
    created = T0 + i * 3600.0
    s = Session(id=f"s_{i:06d}{secrets.token_hex(3)}", candidate_name=f"Candidate {i:05d}",
                candidate_email=f"candidate{i}@example.org",
                challenge=library[i % len(library)],
                model="gpt-4o-mini", assist_policy="hints",
                time_limit_seconds=3600.0, ledger=Ledger(200_000),
                token_hash=hash_token(new_token()), created_at=created,
                last_activity_at=created)
    if messages:
        s.status, s.started_at, s.ended_at = "completed", created + 60, created + 3000
        s.submitted_at, s.end_reason = s.ended_at, "submitted"
        s.message_count = messages
        s.ledger.prompt, s.ledger.completion = 300 * messages, 150 * messages
        s.last_activity_at = s.ended_at
        s.grade = {"score": rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]), "passed": 3, "total": 4,
                   "tests": [], "duration_seconds": 1.5, "error": None}
    return s


def _content(rng: random.Random, role: str) -> str:
    t, n = rng.choice(TOPICS), rng.randint(2, 100_000)
    if role == "user":
        return rng.choice(QUESTIONS).format(t=t, n=n)
    parts = rng.sample(REPLY_PARTS, rng.randint(2, 4))
    return "\n\n".join(p.format(t=t, n=n) for p in parts)


def _notebook(i: int) -> dict:
    return {"cells": [{"cell_type": "code", "id": f"c{j}", "metadata": {}, "outputs": [],
                       "execution_count": j + 1,
                       "source": f"def solve_{i}_{j}(xs):\n    return sorted(xs)[:{j}]\n"}
                      for j in range(6)],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
            rows: list[dict]) -> None:
    """Rows (as _encode gives them) in one statement: one list parameter per column."""
    if not rows:
        return
    select = ", ".join(f"unnest(${i + 1})" for i in range(len(columns)))
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.execute(f"INSERT INTO {table} ({quoted}) SELECT {select}",
                [[row[c] for row in rows] for c in columns])


def build(path: Path, n_sessions: int, n_messages: int, seed: int = 14) -> dict:
    """The file, and what the timings need of it (ids of a typical and the biggest session)."""
    rng = random.Random(seed)
    store = Store(path)
    store.open()  # the real migrations
    store.close()
    # Messages per session: the first one has BIG, the others share the rest evenly (the
    # last few may have none: created, never started).
    rest = max(0, n_messages - BIG)
    per = max(1, -(-rest // max(1, n_sessions - 1)))
    counts = [min(BIG, n_messages)] + [0] * (n_sessions - 1)
    left = rest
    for i in range(1, n_sessions):
        counts[i] = min(per, left)
        left -= counts[i]
    con = duckdb.connect(str(path))
    seq = event_id = 0
    session_rows, message_rows, event_rows = [], [], []
    ids = []
    library = _library()

    def event(s: Session, type_: str, actor: str, payload: dict, at: float) -> None:
        nonlocal event_id
        event_id += 1
        row = {"id": event_id, "session_id": s.id, "type": type_, "actor": actor,
               "payload": Encoded(json.dumps(payload)), "at": at}
        event_rows.append(_encode(EVENT_COLUMNS, row))

    def flush(final: bool = False) -> None:
        if final or len(message_rows) >= 100_000:
            _insert(con, "messages", MESSAGE_COLUMNS, message_rows)
            _insert(con, "events", EVENT_COLUMNS, event_rows)
            message_rows.clear()
            event_rows.clear()

    for i in range(n_sessions):
        s = _session(i, rng, counts[i], library)
        ids.append(s.id)
        event(s, "session.created", "interviewer",
              {"time_limit_seconds": 3600, "token_budget": 200_000, "model": s.model,
               "assist_policy": s.assist_policy, "challenge_id": s.challenge["id"]},
              s.created_at)
        if counts[i]:
            start = s.started_at
            event(s, "session.started", "candidate", {"time_used_seconds": 0.0}, start)
            event(s, "workspace.opened", "candidate", {}, start)
            step = 2800.0 / counts[i]
            for k in range(counts[i]):
                at = start + k * step
                role = "user" if k % 2 == 0 else "assistant"
                fields = ({"prompt_tokens": 300} if role == "user" else
                          {"prompt_tokens": 300, "completion_tokens": 150, "latency_ms": 900,
                           "finished_at": at + 0.9})
                seq += 1
                msg = _message(s, role, _content(rng, role), at, seq=seq, **fields)
                message_rows.append(_encode(MESSAGE_COLUMNS, msg))
                if role == "assistant":
                    event(s, "chat.completed", "system",
                          {"message_id": msg["id"], "prompt_tokens": 300,
                           "completion_tokens": 150, "latency_ms": 900}, at + 0.9)
                if k % 10 == 5:
                    event(s, "activity.cell_executed", "candidate",
                          {"cell_id": f"c{k % 6}", "execution_count": k, "duration_ms": 12,
                           "error": False, "chars": 120, "lines": 4}, at + 1)
                if k % 40 == 20:
                    event(s, "activity.snapshot", "candidate",
                          {"path": "challenge.ipynb", "reason": "autosave",
                           "notebook": _notebook(i), "outputs_dropped": True}, at + 2)
            event(s, "session.submitted", "candidate",
                  {"time_used_seconds": 2940.0, "notebook": _notebook(i)}, s.ended_at)
            event(s, "grade.completed", "system", s.grade, s.ended_at + 5)
        session_rows.append(_encode(SESSION_COLUMNS, s.to_row()))
        flush()
    flush(final=True)
    _insert(con, "sessions", SESSION_COLUMNS, session_rows)
    con.execute("CHECKPOINT")
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    typical = next(sid for sid, c in zip(ids, counts, strict=True) if 90 <= c <= 110) \
        if any(90 <= c <= 110 for c in counts) else ids[-1]
    return {"sessions": n_sessions, "messages": n_messages, "events": events,
            "biggest": ids[0], "typical": typical, "candidate": "Candidate 00042",
            "bytes": path.stat().st_size}


def built(path: Path, n_sessions: int, n_messages: int) -> dict:
    """The file at `path` if it was built with these sizes, else a new one there."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if (info["sessions"], info["messages"]) == (n_sessions, n_messages):
            print(f"reusing {path}", file=sys.stderr)
            return info
    for p in (path, path.with_suffix(".duckdb.wal"), meta):
        p.unlink(missing_ok=True)
    started = time.perf_counter()
    info = build(path, n_sessions, n_messages)
    info["build_seconds"] = round(time.perf_counter() - started, 1)
    meta.write_text(json.dumps(info))
    print(f"built {path}: {n_sessions} sessions, {n_messages} messages, {info['events']} "
          f"events, {info['bytes'] / 1e6:.0f} MB in {info['build_seconds']} s", file=sys.stderr)
    return info


# ---- timing the service ------------------------------------------------------------------
def start(db: Path, workdir: Path, token: str) -> tuple[subprocess.Popen, str, float, Path]:
    """`ib serve` on a copy-free data dir pointing at `db`; seconds to its health route."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    target = data / "ib.duckdb"
    if target.exists() or target.is_symlink():
        target.unlink()
    target.symlink_to(db.resolve())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
    env["IB_TOKEN"] = token
    log = workdir / "service.log"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port),
         "--data-dir", str(data), "--llm-base-url", "http://127.0.0.1:9/v1"],
        env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/ib/api/health", proc, within=600)
    return proc, url, time.perf_counter() - started, log


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def timed(client: httpx.Client, path: str, runs: int, **params) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(path, params=params)
        out.append(time.perf_counter() - t)
        r.raise_for_status()
    return out


def reads(url: str, token: str, info: dict, runs: int) -> dict[str, list[float]]:
    """Seconds per request of each read (the first request of each is a warm-up)."""
    h = {"Authorization": f"token {token}"}
    res: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, headers=h, timeout=120) as c:
        feed = c.get("/ib/api/feed", params={"timeout": 0}).json()

        def run(name: str, path: str, **params) -> None:
            timed(c, path, 1, **params)
            res[name] = timed(c, path, runs, **params)

        run("session list", "/ib/api/sessions")
        run("session list, status filter", "/ib/api/sessions", status="completed")
        run("session list, candidate", "/ib/api/sessions", candidate=info["candidate"])
        run("session list, last page", "/ib/api/sessions", limit=50,
            offset=max(0, info["sessions"] - 50))
        run("messages", f"/ib/api/sessions/{info['typical']}/messages")
        run("messages, biggest", f"/ib/api/sessions/{info['biggest']}/messages")
        run("history search", "/ib/api/sessions", q="priority queue")
        run("history search, no match", "/ib/api/sessions", q="zebra quokka")
        run("feed poll", "/ib/api/feed", cursor=feed.get("cursor", 0), timeout=0)
        run("events", f"/ib/api/sessions/{info['typical']}/events")
        run("record, biggest", f"/ib/api/sessions/{info['biggest']}/record",
            )
    return res


def exports(url: str, token: str, info: dict, workdir: Path, runs: int) -> dict[str, list[float]]:
    """`ib export` of the biggest session, as a command (a new process, imports included)
    and as the render alone in this process (record fetched once)."""
    from ib_extension.review import export

    env = {**os.environ, "IB_TOKEN": token}
    res: dict[str, list[float]] = {}
    for fmt in ("ipynb", "html"):
        out = []
        for k in range(max(1, runs)):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ib_extension.cli", "export", info["biggest"],
                            "--url", url, "--format", fmt, "-o", str(workdir / f"e{k}.{fmt}")],
                           env=env, check=True, capture_output=True)
            out.append(time.perf_counter() - t)
        res[f"ib export --format {fmt}"] = out
    record = httpx.get(f"{url}/ib/api/sessions/{info['biggest']}/record",
                       headers={"Authorization": f"token {token}"}, timeout=120).json()
    for fmt in ("ipynb", "html"):
        out = []
        for _ in range(max(1, runs)):
            t = time.perf_counter()
            export.render(record, fmt)
            out.append(time.perf_counter() - t)
        res[f"render {fmt} (in process)"] = out
    return res


def load_seconds(log: Path) -> str:
    """Service.load's time, when the service logs it."""
    for line in log.read_text(errors="replace").splitlines():
        if "; loaded " in line and " sessions in " in line:
            return line.split("; ")[-1].strip()
    return "(not logged)"


def wait_indexed(url: str, within: float = 600) -> str:
    """Poll /health until history search's index is no longer filling; its final state."""
    deadline = time.monotonic() + within
    while True:
        state = httpx.get(url + "/ib/api/health", timeout=30).json()["search_index"]
        if state != "filling" or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def measure(db: Path, info: dict, runs: int, export_runs: int) -> dict:
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="ib-scale-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        proc, url, up, log = start(db, work, token)
        try:
            state = wait_indexed(url)
            indexed = time.perf_counter() - started
            if state != "ready":
                raise RuntimeError(f"history search's index is {state!r}, not ready")
            res = reads(url, token, info, runs)
            if export_runs:
                res.update(exports(url, token, info, work, export_runs))
        except Exception:
            print(log.read_text(errors="replace")[-6000:], file=sys.stderr)
            raise
        finally:
            stop(proc)
        return {"startup": up, "indexed": indexed, "load": load_seconds(log), "reads": res}


TURNS_PER_BATCH = 20


def write_batches(db: Path, rounds: int = 12) -> list[float]:
    """Process CPU seconds of moving a batch of chat turns into a copy of the file, as the
    service's journal mover does: each turn a new question and reply, the reply rewritten
    when it ends, its session's row and a chat.completed event, written the way the
    service writes them (`Service.save_message` marks first writes new)."""
    with tempfile.TemporaryDirectory(prefix="ib-scale-batches-") as tmp:
        copy = Path(tmp) / db.name
        copy.write_bytes(db.read_bytes())
        store = Store(copy, batch_seconds=3600)  # only the reads below move the journal
        store.open()
        try:
            sessions = [Session.from_row(r) for r in store.submit(store.load_sessions).result()]
            seq = store.submit(store.max_message_seq).result()
            event_id = store.submit(store.max_event_id).result()
            cpu = []
            for r in range(rounds):
                for k in range(TURNS_PER_BATCH):
                    s = sessions[(r * TURNS_PER_BATCH + k) % len(sessions)]
                    at = (s.started_at or T0) + 1
                    question = _message(s, "user", "And in O(n log n)?", at, seq=seq + 1)
                    reply = _message(s, "assistant", "", at, seq=seq + 2, status="streaming")
                    seq += 2
                    store.save_message(question, new=True)
                    store.save_message(reply, new=True)
                    s.message_count += 2
                    store.save_session(s.to_row())
                    store.save_message({**reply, "content": "Sort, then scan once.",
                                        "status": "complete", "completion_tokens": 6})
                    event_id += 1
                    store.save_event({"id": event_id, "session_id": s.id,
                                      "type": "chat.completed", "actor": "system", "at": at,
                                      "payload": Encoded(json.dumps(
                                          {"message_id": reply["id"], "prompt_tokens": 40,
                                           "completion_tokens": 6, "latency_ms": 900}))})
                    store.save_session(s.to_row())
                started = time.process_time()  # every thread's: DuckDB's too
                store.submit(lambda: None).result()
                cpu.append(time.process_time() - started)
            return cpu
        finally:
            store.close()


def ms(v: float) -> str:
    return f"{v * 1000:9.1f}ms" if v < 10 else f"{v:9.1f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--small-sessions", type=int, default=100,
                    help="sessions of the baseline file (messages in the same proportion)")
    ap.add_argument("--runs", type=int, default=30, help="requests per read")
    ap.add_argument("--export-runs", type=int, default=3, help="exports per format (0: none)")
    ap.add_argument("--keep", type=Path, help="build (or reuse) the big file here")
    ap.add_argument("--json", type=Path, help="also write the big file's numbers here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ib-scale-files-") as tmp:
        big_path = args.keep or Path(tmp) / "big.duckdb"
        small_msgs = max(BIG, args.messages * args.small_sessions // max(1, args.sessions))
        small_path = Path(tmp) / "small.duckdb"
        big = built(big_path, args.sessions, args.messages)
        small = built(small_path, args.small_sessions, small_msgs)
        print(f"measuring the small file ({args.small_sessions} sessions)...", file=sys.stderr)
        s = measure(small_path, small, args.runs, args.export_runs)
        print(f"measuring the big file ({args.sessions} sessions)...", file=sys.stderr)
        b = measure(big_path, big, args.runs, args.export_runs)
        print("moving write batches into both files...", file=sys.stderr)
        s["batches"], b["batches"] = write_batches(small_path), write_batches(big_path)
    print(f"\nbig file: {big['sessions']} sessions, {big['messages']} messages, "
          f"{big['events']} events, {big['bytes'] / 1e6:.0f} MB; small file: "
          f"{small['sessions']} sessions, {small['messages']} messages")
    print(f"\n{'':34}{'small':>11}{'big p50':>11}{'big p95':>11}{'target':>9}{'ratio':>8}")
    print(f"{'start-up (to /health)':34}{ms(s['startup'])}{ms(b['startup'])}{'':11}"
          f"{'seconds':>9}{b['startup'] / s['startup']:7.2f}x")
    print(f"{'search index ready (from start)':34}{ms(s['indexed'])}{ms(b['indexed'])}{'':11}"
          f"{'':>9}{b['indexed'] / s['indexed']:7.2f}x")
    for name, values in b["reads"].items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        small50 = percentile(s["reads"][name], 50)
        target = next((f"{v}ms" for k, v in TARGETS.items() if name.startswith(k)), "")
        if name.startswith(("ib export", "render")):
            target = "2 s"
        print(f"{name:34}{ms(small50)}{ms(p50)}{ms(p95)}{target:>9}{p50 / small50:7.2f}x")
    small50, p50 = percentile(s["batches"], 50), percentile(b["batches"], 50)
    print(f"{f'write batch of {TURNS_PER_BATCH} chat turns (CPU)':34}{ms(small50)}{ms(p50)}"
          f"{ms(percentile(b['batches'], 95))}{'':>9}{p50 / max(small50, 1e-9):7.2f}x")
    print(f"\nService.load (big file): {b['load']}")
    if args.json:
        args.json.write_text(json.dumps({
            "sessions": big["sessions"], "messages": big["messages"],
            "startup_s": b["startup"], "indexed_s": b["indexed"],
            "reads_s": {name: {"p50": percentile(v, 50), "p95": percentile(v, 95)}
                        for name, v in b["reads"].items()},
            "write_batch_s": {"p50": percentile(b["batches"], 50),
                              "small_p50": percentile(s["batches"], 50)}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
