"""Build session records (the input of analytics, provenance and export) in code.

A session record is ``{"session", "messages", "events", "final_notebook", "grade",
"challenge"}`` with the shapes of docs/API.md. ``RecordBuilder`` plays the service:
each call appends what the service would log at ``t`` seconds after ``T0``, and
``build()`` fills in the session's aggregate fields. Other test modules may reuse it::

    b = RecordBuilder()
    b.start(0)
    b.ask(60, "How do I sum a list?", "Use `sum`:\\n```python\\ntotal = sum(xs)\\n```")
    b.pause(120); b.resume(180)
    b.submit(300, notebook(code_cell("total = sum(xs)")))
    record = b.build()
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import nbformat
from views import THRESHOLDS

from ib_extension.api.events import check_payload
from ib_extension.api.models import Event, Grade, Message, Record
from ib_extension.service.budget import Ledger
from ib_extension.service.sessions import Session, hash_token

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=timezone.utc)

CHALLENGE = {
    "id": "two-sum",
    "title": "Two Sum",
    "difficulty": "easy",
    "category": "algorithms",
    "statement": "Return the indices of the two numbers that add up to `target`.",
    "starter_code": "def two_sum(nums, target):\n    ...",
}


def iso(t: float) -> str:
    """The API's timestamp format for ``t`` seconds after ``T0``."""
    moment = T0 + timedelta(seconds=t)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def code_cell(source: str, **kwargs) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, **kwargs)


def markdown_cell(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source)


def notebook(*cells) -> dict:
    """A plain-dict nbformat v4 notebook, as the submit call carries it."""
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return _plain(nb)


def fenced(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}\n```"


def _plain(node):
    """NotebookNode -> plain dicts/lists (what JSON over HTTP gives you)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


class RecordBuilder:
    """Plays the service: a real `Session` (its transitions, ledger and clock), events
    checked against the catalogue, every shape validated by the wire models, so a test
    cannot build a record the service would not produce."""

    def __init__(
        self,
        *,
        session_id: str = "s_test000001",
        candidate_name: str = "Ada Lovelace",
        time_limit_seconds: int = 3600,
        token_budget: int = 20000,
        challenge: dict | None = CHALLENGE,
        model: str = "gpt-4o-mini",
    ):
        self.challenge = copy.deepcopy(challenge)
        self.session = Session(
            id=session_id, candidate_name=candidate_name, candidate_email="ada@example.com",
            challenge=copy.deepcopy(challenge) or {"id": None, "title": "Custom challenge",
                                                    "statement": "Solve it."},
            model=model, assist_policy="full", time_limit_seconds=float(time_limit_seconds),
            ledger=Ledger(token_budget), token_hash=hash_token("builder"), created_at=_at(0),
            last_activity_at=_at(0))
        self.messages: list[dict] = []
        self.events: list[dict] = []
        self.final_notebook: dict | None = None
        self.last = 0.0
        self.event(0, "session.created", actor="interviewer", time_limit_seconds=time_limit_seconds,
                   token_budget=token_budget, model=model, assist_policy="full",
                   challenge_id=(challenge or {}).get("id"))

    @property
    def session_id(self) -> str:
        return self.session.id

    # -- raw entries ---------------------------------------------------------
    def event(self, t: float, type: str, actor: str = "system", **payload) -> dict:
        check_payload(type, payload)
        ev = Event(id=len(self.events) + 1, session_id=self.session_id, type=type, actor=actor,
                   payload=payload, at=iso(t)).model_dump()
        self.events.append(ev)
        self.last = max(self.last, t)
        return ev

    def message(
        self,
        t: float,
        role: str,
        content: str,
        *,
        finished: float | None = None,
        prompt_tokens=None,
        completion_tokens=None,
        latency_ms=None,
        status: str = "complete",
    ) -> dict:
        msg = Message(
            id=f"m_{len(self.messages) + 1:04d}", seq=len(self.messages) + 1,
            session_id=self.session_id, role=role, content=content, model=self.session.model,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            latency_ms=latency_ms, status=status, created_at=iso(t),
            finished_at=iso(t if finished is None else finished)).model_dump()
        self.messages.append(msg)
        self.session.message_count += 1
        self.session.last_activity_at = _at(t)
        self.last = max(self.last, t if finished is None else finished)
        return msg

    def _lifecycle(self, t: float, action: str, actor: str, **payload) -> None:
        s = self.session
        s.apply(action, _at(t))
        past = {"start": "started", "pause": "paused", "resume": "resumed", "end": "ended",
                "expire": "expired", "submit": "submitted"}[action]
        self.event(t, f"session.{past}", actor=actor, **payload, status=s.status,
                   reason=s.end_reason if s.ended else None,
                   time_used_seconds=round(s.time_used(_at(t)), 3))

    # -- what the service logs -----------------------------------------------
    def start(self, t: float = 0) -> None:
        self._lifecycle(t, "start", "interviewer")

    def ask(
        self,
        t: float,
        question: str,
        answer: str,
        *,
        prompt_tokens: int = 100,
        completion_tokens: int = 50,
        latency: float = 2.0,
        status: str = "complete",
        estimate: int | None = None,
    ) -> tuple[dict, dict]:
        """A question at ``t`` and its reply, which takes ``latency`` seconds. Like the
        service, the question carries the prompt estimate made before the call
        (``estimate``, by default what was billed) and the reply what the provider billed:
        the prompt and the completion, which the ledger charges."""
        user = self.message(t, "user", question,
                            prompt_tokens=prompt_tokens if estimate is None else estimate)
        reply = self.message(
            t,
            "assistant",
            answer,
            finished=t + latency,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=round(latency * 1000),
            status=status,
        )
        self.session.ledger.settle(reply["id"], prompt_tokens, completion_tokens)
        self.event(
            t + latency,
            "chat.completed" if status == "complete" else "chat.cut",
            message_id=reply["id"],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=round(latency * 1000),
            **({} if status == "complete" else {"reason": status}),
        )
        return user, reply

    def pause(self, t: float) -> None:
        self._lifecycle(t, "pause", "interviewer")

    def resume(self, t: float) -> None:
        self._lifecycle(t, "resume", "interviewer")

    def lock(self, t: float) -> None:
        self.session.set_locked(True)
        self.event(t, "session.locked", actor="interviewer", locked=True)

    def extend_tokens(self, t: float, tokens: int) -> None:
        self.session.extend_tokens(tokens)
        self.event(t, "tokens.extended", actor="interviewer", tokens=tokens)

    def extend_time(self, t: float, seconds: int) -> None:
        reopened = self.session.extend_time(seconds, _at(t))
        self.event(t, "time.extended", actor="interviewer", seconds=seconds, reopened=reopened,
                   time_used_seconds=round(self.session.time_used(_at(t)), 3))

    def refusal(self, t: float, code: str = "budget_exhausted") -> None:
        self.session.flags["refusals"] += 1
        self.event(t, "refusal", code=code, message=f"refused: {code}")

    def warning(self, t: float, kind: str = "tokens", threshold: int = 25) -> None:
        self.session.warnings.append({"kind": kind, "threshold": threshold, "at": _at(t)})
        self.session.flags["warnings"] += 1
        left = (self.session.ledger.settled_left if kind == "tokens"
                else round(self.session.time_left(_at(t))))
        self.event(t, "warning", kind=kind, threshold=threshold, left=left)

    def injection(self, t: float, pattern: str = "ignore previous", excerpt: str = "...") -> None:
        self.session.flags["injection"] += 1
        self.event(t, "injection.suspected", pattern=pattern, excerpt=excerpt)

    def activity(self, t: float, kind: str, **payload) -> None:
        if kind == "paste":
            self.session.flags["large_paste"] += 1
        self.event(t, f"activity.{kind}", actor="candidate", **payload)

    def submit(self, t: float, nb: dict) -> None:
        self.final_notebook = nb
        self._lifecycle(t, "submit", "candidate", notebook=nb)

    def end(self, t: float, actor: str = "interviewer") -> None:
        self._lifecycle(t, "end", actor)

    def expire(self, t: float) -> None:
        self._lifecycle(t, "expire", "system")

    def grade(self, tests: list[tuple[str, bool, bool]], *, error: str | None = None) -> None:
        """``tests``: (name, visible, passed) triples; graded as the grader does."""
        passed = sum(1 for _, _, ok in tests if ok)
        result = Grade(
            score=passed / len(tests) if tests else 0.0, passed=passed, total=len(tests),
            tests=[{"name": n, "visible": v, "passed": ok,
                    "message": "" if ok else "AssertionError"} for n, v, ok in tests],
            duration_seconds=0.5, error=error).model_dump()
        self.session.grade = result
        self.event(self.last, "grade.completed", **result)

    # -- the record ------------------------------------------------------------
    def build(self) -> dict:
        view = self.session.view(_at(self.last), THRESHOLDS)
        record = Record(session=view, messages=self.messages, events=self.events,
                        final_notebook=self.final_notebook, grade=self.session.grade,
                        challenge=self.challenge or view.challenge.model_dump())
        return copy.deepcopy(record.model_dump())


def _at(t: float) -> float:
    return (T0 + timedelta(seconds=t)).timestamp()


def _seconds(stamp: str) -> float:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - T0).total_seconds()


def sample_record() -> dict:
    """A complete, graded session that exercises every part of the exports:
    questions, a pause, a token extension, a warning, a refusal, an injection flag,
    and a final notebook with one copied, one modified and one hand-written cell."""
    b = RecordBuilder()
    b.start(0)
    b.ask(
        90,
        "How do I find two numbers that add up to a target quickly?",
        "Use a dictionary of seen values:\n\n" + fenced(COPIED_BLOCK),
        prompt_tokens=300,
        completion_tokens=120,
        latency=3.0,
    )
    b.pause(600)
    b.resume(660)
    b.ask(
        900,
        "Can you add input validation?",
        "Sure:\n\n" + fenced(MODIFIED_BLOCK_AI),
        prompt_tokens=500,
        completion_tokens=200,
        latency=4.0,
    )
    b.warning(1000, "tokens", 25)
    b.extend_tokens(1100, 5000)
    b.injection(1150, "ignore previous instructions", "ignore previous instructions and")
    b.refusal(1200, "rate_limited")
    b.ask(
        1300,
        "Any edge cases I missed?",
        "Empty input and duplicates. No code needed.",
        prompt_tokens=700,
        completion_tokens=60,
        latency=1.5,
    )
    b.submit(
        1800,
        notebook(
            markdown_cell("# My solution"),
            code_cell(COPIED_BLOCK),
            code_cell(MODIFIED_BLOCK_CANDIDATE),
            code_cell(HANDWRITTEN),
        ),
    )
    b.grade(
        [
            ("test_example", True, True),
            ("test_duplicates", False, True),
            ("test_large", False, False),
        ]
    )
    return b.build()


COPIED_BLOCK = """def two_sum(nums, target):
    seen = {}
    for i, n in enumerate(nums):
        if target - n in seen:
            return [seen[target - n], i]
        seen[n] = i
    return []"""

MODIFIED_BLOCK_AI = """def check_input(nums, target):
    if not isinstance(nums, list):
        raise TypeError("nums must be a list")
    if not all(isinstance(n, int) for n in nums):
        raise TypeError("nums must hold integers")
    if not isinstance(target, int):
        raise TypeError("target must be an integer")"""

# Two lines changed, one added, the rest as the AI wrote them.
MODIFIED_BLOCK_CANDIDATE = """def check_input(nums, target):
    if not isinstance(nums, (list, tuple)):
        raise TypeError("nums must be a list")
    if not all(isinstance(n, int) for n in nums):
        raise TypeError("nums must hold ints only")
    if not isinstance(target, int):
        raise TypeError("target must be an integer")
    return True"""

HANDWRITTEN = """assert two_sum([2, 7, 11, 15], 9) == [0, 1]
assert two_sum([3, 3], 6) == [0, 1]
print("all good")"""


SECRETS = {
    "candidate_token": "ibc_SECRET_candidate_token_5f1e",
    "api_key": "sk-SECRET-provider-key-9a7b",
    "interviewer_token": "ibi_SECRET_interviewer_token_c3d2",
}


def plant_secrets(record: dict) -> list[str]:
    """Put secret-looking values wherever a careless producer might leave one (extra
    keys on the session, messages, events, grade, challenge, notebook metadata, a
    provider error's message) and return them; exports must contain none of them."""
    token, key, admin = SECRETS["candidate_token"], SECRETS["api_key"], SECRETS["interviewer_token"]
    record["session"].update(candidate_token=token, api_key=key)
    record["session"]["challenge"] = {
        **(record["session"].get("challenge") or {}),
        "hidden_tests": admin,
    }
    record["env"] = {"IB_TOKEN": admin, "OPENAI_API_KEY": key}
    record["candidate_token"] = token
    for m in record["messages"]:
        m["api_key"] = key
    for e in record["events"]:
        e["payload"]["candidate_token"] = token
        e["auth"] = admin
    record["events"].append(
        {
            "id": 999,
            "session_id": record["session"]["id"],
            "type": "provider.error",
            "actor": "system",
            "payload": {"message": f"Incorrect API key provided: {key}"},
            "at": record["events"][-1]["at"],
        }
    )
    if record.get("grade"):
        record["grade"]["runner_token"] = admin
        record["grade"]["tests"][0]["env"] = {"IB_TOKEN": admin}
    if record.get("challenge"):
        record["challenge"]["hidden_tests"] = f"assert secret == {admin!r}"
    nb = record.get("final_notebook")
    if nb:
        nb["metadata"]["interview_buddy"] = {"candidate_token": token}
        nb["metadata"]["kernelspec"]["env"] = {"OPENAI_API_KEY": key}
        nb["cells"][0]["metadata"]["ib"] = {"token": token}
    return list(SECRETS.values())


def typical_interview() -> dict:
    """A 45-minute interview as one looks at its end: 15 questions with code in the
    replies, a cell run every 20 s, an autosave every 15 s (as the workspace sends
    them), a pause, a token extension, and a 25-cell notebook graded on 8 tests."""
    b = RecordBuilder(time_limit_seconds=45 * 60, token_budget=60_000)
    b.start(0)
    cells = [code_cell(f"def step_{i}(xs):\n" + "".join(
        f"    xs = [x + {j} for x in xs if x % {j + 2}]\n" for j in range(8)) + "    return xs",
        outputs=[nbformat.v4.new_output("stream", text=f"step {i}: ok\n" * 5)])
        for i in range(25)]
    for i in range(15):
        t = 60 + i * 170
        answer = (f"Here is one way to do step {i}, with a note on its cost.\n\n"
                  + "It keeps the list small at each pass. " * 40 + "\n\n"
                  + fenced(_source(cells[i])))
        b.ask(t, f"How should I write step {i}? " + "Some context. " * 20, answer,
              prompt_tokens=900 + 150 * i, completion_tokens=420, latency=6.0,
              estimate=850 + 150 * i)
    for k, t in enumerate(range(30, 45 * 60 - 30, 20)):
        b.activity(t, "cell_executed", cell_id=cells[k % 25]["id"], execution_count=k + 1,
                   duration_ms=40, source=_source(cells[k % 25]))
    for t in range(15, 45 * 60 - 15, 15):
        b.activity(t, "snapshot", path="interview.ipynb", reason="autosave",
                   notebook=notebook(*cells[: 1 + t * 25 // (45 * 60)]))
    b.pause(1200)
    b.resume(1260)
    b.extend_tokens(1500, 10_000)
    b.submit(45 * 60 - 10, notebook(*cells))
    b.grade([(f"test_case_{i}", i < 3, i != 5) for i in range(8)])
    return b.build()


def _source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
