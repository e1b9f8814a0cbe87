"""Create a session: the form, its validation beside each field, the challenge as the
interviewer will see it (answer key included) and what to hand the candidate once the
service has made it. Each filled-in form is sent with one Idempotency-Key, so a double
click or a retry makes one session; a session that already exists for the same
candidate and challenge is named before another is made."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import ipywidgets as w
from IPython.display import display

from ..api.client import AsyncIBClient, IBClientError
from ..api.models import CLOCK_STARTS
from . import fmt
from .handover import Handover, boxes, handout  # noqa: F401  (handout: the page's API)
from .live import spawn, strict

POLICY_LABELS = {"full": "Full help", "hints": "Hints only", "no_code": "No code"}
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MINUTES = (1, 8 * 60)
TOKENS = (100, 2_000_000)
LIBRARY, CUSTOM = "library", "custom"


@dataclass
class Draft:
    """What the interviewer typed, before the service sees it."""

    name: str = ""
    email: str = ""
    source: str = CUSTOM
    challenge_id: str | None = None
    title: str = ""
    statement: str = ""
    minutes: int | None = 45
    tokens: int | None = 20_000
    model: str | None = None
    policy: str | None = None

    def errors(self) -> dict[str, str]:
        """Field -> the sentence shown beside it; empty when the draft can be sent."""
        found = {}
        if not self.name.strip():
            found["name"] = "Enter the candidate's name."
        elif len(self.name.strip()) > 200:
            found["name"] = "Keep the name under 200 characters."
        if self.email.strip() and not EMAIL.match(self.email.strip()):
            found["email"] = "This does not look like an email address (name@example.com)."
        if self.source == LIBRARY and not self.challenge_id:
            found["challenge"] = "Pick a challenge from the library, or write a custom one."
        if self.source == CUSTOM:
            if not self.title.strip():
                found["title"] = "Give the challenge a title."
            if not self.statement.strip():
                found["statement"] = "Write what the candidate should do."
        if self.minutes is None or not MINUTES[0] <= self.minutes <= MINUTES[1]:
            found["minutes"] = f"Between {MINUTES[0]} and {MINUTES[1]} minutes."
        if self.tokens is None or not TOKENS[0] <= self.tokens <= TOKENS[1]:
            found["tokens"] = f"Between {TOKENS[0]:,} and {TOKENS[1]:,} tokens."
        return found

    def body(self) -> dict:
        """The POST /ib/api/sessions request for a valid draft."""
        body = {"candidate_name": self.name.strip(),
                "candidate_email": self.email.strip() or None,
                "time_limit_seconds": self.minutes * 60, "token_budget": self.tokens,
                "model": self.model, "assist_policy": self.policy}
        if self.source == LIBRARY:
            body["challenge_id"] = self.challenge_id
        else:
            body["challenge_title"] = self.title.strip()
            body["challenge_text"] = self.statement.strip()
        return {k: v for k, v in body.items() if v is not None}


async def fetch_challenges(client) -> list[dict]:
    """The service's challenge library, or [] when it has none to offer (then the form
    offers custom text only)."""
    try:
        found = await client.challenges()
    except (IBClientError, httpx.HTTPError, ValueError):
        return []
    return [c for c in found.get("challenges") or [] if c.get("id") and c.get("title")]


LABEL_WIDTH = "150px"


def _field(label: str, control: w.Widget, help_: str = "") -> tuple[w.Box, w.HTML]:
    """A labelled control (its own <label>, for screen readers too), its help, its error."""
    control.description = label
    control.style.description_width = LABEL_WIDTH
    error = w.HTML()
    error.add_class("ib-field-error")
    parts = [control]
    if help_:
        parts.append(w.HTML(f'<div class="ib-help">{fmt.esc(help_)}</div>'))
    box = w.HBox([*parts, error])
    box.add_class("ib-field")
    return box, error


def same_person_and_challenge(session: dict, draft: Draft, title: str) -> bool:
    """Whether `session` is for the draft's candidate and challenge (library id, else
    the custom challenge's title)."""
    if (session.get("candidate_name") or "").strip().lower() != draft.name.strip().lower():
        return False
    ch = session.get("challenge") or {}
    if draft.source == LIBRARY:
        return ch.get("id") == draft.challenge_id
    return not ch.get("id") and (ch.get("title") or "").strip().lower() == title.lower()


def challenge_markdown(c: dict) -> str:
    """The preview: what the candidate will get, then (for the interviewer only) the
    hidden tests and notes. Markdown, rendered by Voilà's sanitising renderer."""
    def fenced(code: str) -> str:
        ticks = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", code)), default=0))
        return f"{ticks}python\n{code.rstrip()}\n{ticks}"

    tags = ", ".join(c.get("tags") or [])
    parts = [f"### {c['title']}", c.get("statement") or ""]
    if tags:
        parts.append(f"*Tags: {tags}*")
    for key, title in (("starter_code", "Starter code"), ("visible_tests", "Tests the "
                                                                           "candidate sees")):
        if c.get(key):
            parts += [f"**{title}**", fenced(c[key])]
    secret = [("hidden_tests", "Hidden tests"), ("interviewer_notes", "Interviewer notes")]
    if any(c.get(k) for k, _ in secret):
        parts.append("---\n\n**For you only — the candidate never sees this part**")
        if c.get("hidden_tests"):
            parts += ["**Hidden tests**", fenced(c["hidden_tests"])]
        if c.get("interviewer_notes"):
            parts += ["**Interviewer notes**", c["interviewer_notes"]]
    return "\n\n".join(parts)


class CreatePage:
    def __init__(self, client=None):
        self.client = client or AsyncIBClient()
        self.challenges: dict[str, dict] = {}
        self.tried = False  # after a first submit, fields re-check as they change

        self.name = w.Text(placeholder="Ada Lovelace")
        self.email = w.Text(placeholder="ada@example.com (optional)")
        self.source = w.ToggleButtons(options=[("From the library", LIBRARY),
                                               ("Custom text", CUSTOM)], value=CUSTOM)
        self.source.add_class("ib-source")
        self.library = w.Dropdown(options=[("Loading the library…", None)])
        self.details: dict[str, dict] = {}  # challenge id -> its interviewer view
        self.preview = w.Output()
        self.preview.add_class("ib-preview")
        self.title = w.Text(placeholder="e.g. FizzBuzz")
        self.statement = w.Textarea(placeholder="What should the candidate build? Markdown is fine.",
                                    layout=w.Layout(height="140px"))
        self.minutes = w.IntText(value=45)
        self.tokens = w.IntText(value=20_000, step=1000)
        self.model = w.Dropdown(options=[])
        self.policy = w.Dropdown(options=[])
        self.policy_help = w.HTML()
        self.policy_help.add_class("ib-policy-help")
        self.policy_texts: dict[str, str] = {}
        self.submit = w.Button(description="Create session", button_style="primary",
                               icon="")
        self.submit.add_class("ib-submit")
        self.submit.on_click(lambda _: self._spawn_create())
        self.status = w.HTML()
        self.status.add_class("ib-result")
        self.another = w.Button(description="Create another one", button_style="warning")
        self.another.add_class("ib-create-another")
        self.another.on_click(lambda _: spawn(self.create(another=True)))
        self.another.layout.display = "none"
        self.result = w.VBox()
        self.result.add_class("ib-created")
        self.handover = Handover(self.client)
        # One Idempotency-Key per filled-in form: the same form sent twice (a double
        # click, a retry) is one session; a changed form gets a new key.
        self.key, self.keyed_body, self.busy = uuid.uuid4().hex, None, False

        rows = {}
        rows["name"], self.name_err = _field("Candidate", self.name)
        rows["email"], self.email_err = _field("Email", self.email)
        rows["source"], _ = _field("Challenge", self.source)
        rows["challenge"], self.challenge_err = _field("From the library", self.library)
        rows["title"], self.title_err = _field("Title", self.title)
        rows["statement"], self.statement_err = _field("Statement", self.statement)
        rows["minutes"], self.minutes_err = _field("Time limit", self.minutes, "minutes")
        rows["tokens"], self.tokens_err = _field("Token budget", self.tokens,
                                                 "tokens the provider bills: prompt + "
                                                 "completion")
        rows["model"], _ = _field("Model", self.model)
        rows["policy"], _ = _field("Assist policy", self.policy)
        rows["policy"].children = (*rows["policy"].children[:-1], self.policy_help,
                                   rows["policy"].children[-1])
        self.rows = rows
        for name in ("name", "email", "title", "statement", "minutes", "tokens", "model",
                     "policy", "library"):
            getattr(self, name).add_class(f"ib-input-{name}")
        self.errors = {"name": self.name_err, "email": self.email_err,
                       "challenge": self.challenge_err, "title": self.title_err,
                       "statement": self.statement_err, "minutes": self.minutes_err,
                       "tokens": self.tokens_err}
        self.library_box = w.VBox([rows["challenge"], self.preview])
        self.custom_box = w.VBox([rows["title"], rows["statement"]])
        form = w.VBox([w.HTML('<h2 class="ib-h2">New interview session</h2>'),
                       rows["name"], rows["email"], rows["source"], self.library_box,
                       self.custom_box, rows["minutes"], rows["tokens"], rows["model"],
                       rows["policy"], w.HBox([self.submit, self.status, self.another])])
        form.add_class("ib-card")
        form.add_class("ib-form")
        self.widget = w.VBox([form, self.result, self.handover.widget])
        self.handover.widget.layout.display = "none"
        self.widget.add_class("ib-dash")
        self.widget.add_class("ib-create")

        self.source.observe(lambda _: self._source_changed(), "value")
        self.policy.observe(lambda _: self._policy_changed(), "value")
        self.library.observe(lambda _: self._challenge_changed(), "value")
        for control in (self.name, self.email, self.title, self.statement, self.minutes,
                        self.tokens):
            control.observe(lambda _: self.check(), "value")
        self._source_changed()

    def _ipython_display_(self):
        display(self.widget)

    async def start(self) -> None:
        """Read the allowed models and policies, and the challenge library if the service
        has one; without a library the form offers custom text only."""
        try:
            models = await self.client.models()
        except (IBClientError, httpx.HTTPError, ValueError) as e:
            self.status.value = fmt.notice("error", f"Cannot reach the ib service: {_reason(e)}")
            self.submit.disabled = True
            if strict():
                raise
            return
        self.model.options = models.get("models") or []
        self.model.value = models.get("default") if models.get("default") in self.model.options \
            else (self.model.options[0] if self.model.options else None)
        policies = models.get("assist_policies") or []
        self.policy_texts = models.get("assist_policy_texts") or {}
        self.policy.options = [(POLICY_LABELS.get(p, p), p) for p in policies]
        default_policy = models.get("default_assist_policy")
        if default_policy in policies:
            self.policy.value = default_policy
        self._policy_changed()
        await self.load_library()

    async def load_library(self) -> None:
        challenges = await fetch_challenges(self.client)
        self.challenges = {c["id"]: c for c in challenges}
        if not challenges:
            self.source.options = [("Custom text", CUSTOM)]
            self.source.value = CUSTOM
            return
        self.library.options = [(f'{c["title"]} · {c.get("difficulty") or "?"} · '
                                 f'{c.get("category") or ""}', c["id"]) for c in challenges]
        self.library.value = challenges[0]["id"]
        self.source.value = LIBRARY
        self._challenge_changed()

    # -- reactions ---------------------------------------------------------------------
    def _source_changed(self) -> None:
        library = self.source.value == LIBRARY
        self.library_box.layout.display = "flex" if library else "none"
        self.custom_box.layout.display = "none" if library else "flex"
        self.check()

    def _policy_changed(self) -> None:
        text = self.policy_texts.get(self.policy.value or "", "")
        self.policy_help.value = (f'<div class="ib-help">The AI is told: “{fmt.esc(text)}”</div>'
                                  if text else "")

    def _challenge_changed(self) -> None:
        c = self.challenges.get(self.library.value)
        if c is None:
            self.preview.outputs = ()
            return
        if c.get("suggested_minutes"):
            self.minutes.value = int(c["suggested_minutes"])
        if c.get("suggested_tokens"):
            self.tokens.value = int(c["suggested_tokens"])
        self.draw_preview(self.details.get(c["id"], c))
        if c["id"] not in self.details:
            spawn(self._load_details(c["id"]))
        self.check()

    def draw_preview(self, c: dict) -> None:
        # Set as the output's state (not captured output), so the task that reads the
        # answer key may redraw it too.
        self.preview.outputs = ({"output_type": "display_data",
                                 "data": {"text/markdown": challenge_markdown(c)},
                                 "metadata": {}},)

    async def _load_details(self, challenge_id: str) -> None:
        """The interviewer's view of the challenge: hidden tests and notes too."""
        try:
            self.details[challenge_id] = await self.client.challenge(challenge_id)
        except (IBClientError, httpx.HTTPError, ValueError):
            return
        if self.library.value == challenge_id:
            self.draw_preview(self.details[challenge_id])

    def draft(self) -> Draft:
        return Draft(name=self.name.value, email=self.email.value, source=self.source.value,
                     challenge_id=self.library.value, title=self.title.value,
                     statement=self.statement.value, minutes=self.minutes.value,
                     tokens=self.tokens.value, model=self.model.value, policy=self.policy.value)

    def check(self, *, all_fields: bool = False) -> dict[str, str]:
        """Show each field's problem beside it: untouched empty fields stay quiet until the
        first submit."""
        found = self.draft().errors()
        quiet = {"name": not self.name.value, "title": not self.title.value,
                 "statement": not self.statement.value}
        for field, label in self.errors.items():
            message = found.get(field, "")
            if message and not (all_fields or self.tried) and quiet.get(field):
                message = ""
            label.value = f'<span class="ib-err">{fmt.esc(message)}</span>' if message else ""
        return found

    def _spawn_create(self) -> None:
        spawn(self.create())

    async def create(self, *, another: bool = False) -> dict | None:
        """Send the form; `another` confirms a session beside one that already exists."""
        self.tried = True
        self.another.layout.display = "none"
        if self.check(all_fields=True):
            self.status.value = fmt.notice("error", "Fix the fields marked in red first.")
            return None
        if self.busy:  # a second click while the first is on its way
            return None
        draft = self.draft()
        body = draft.body()
        if another or body != self.keyed_body:
            self.key, self.keyed_body = uuid.uuid4().hex, body
        elif self.result.children:  # this very form made it already: show it again
            self.status.value = fmt.notice("info", "This form already created the session "
                                                   "below.")
            return None
        self.busy = self.submit.disabled = True
        try:
            if not another:
                existing = await self.existing(draft)
                if existing:
                    self.warn_existing(existing)
                    self.keyed_body = None  # a confirmed second session gets its own key
                    return None
            self.status.value = fmt.notice("info", "Creating…")
            created = await self.client.create_session(**body, idempotency_key=self.key)
        except IBClientError as e:
            self.status.value = fmt.notice("error", e.message)
            return None
        except (httpx.HTTPError, ValueError) as e:
            self.status.value = fmt.notice("error", f"The service did not answer: {_reason(e)}")
            return None
        finally:
            self.busy = self.submit.disabled = False
        self.status.value = fmt.notice("ok", f"Created session {created['id']}.")
        self.show_result(created)
        return created

    async def existing(self, draft: Draft) -> list[dict]:
        """Sessions already made for this candidate and challenge, newest first."""
        page = await self.client.list_sessions(candidate=draft.name.strip(), limit=100)
        title = draft.title.strip()
        return [s for s in page["sessions"] if same_person_and_challenge(s, draft, title)]

    def warn_existing(self, found: list[dict]) -> None:
        listed = "; ".join(
            f"{s['id']} ({s.get('status')}, created "
            f"{(s.get('created_at') or '')[:16].replace('T', ' ')} UTC)" for s in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        self.status.value = fmt.notice(
            "warn", f"{found[0].get('candidate_name')} already has "
                    f"{'a session' if len(found) == 1 else f'{len(found)} sessions'} on "
                    f"{fmt.challenge_title(found[0])}: {listed}{more}. Watch it on the "
                    "monitor, or create another one.")
        self.another.layout.display = ""

    def show_result(self, created: dict) -> None:
        s = created["session"]
        link = created.get("candidate_url")  # on JupyterHub: the one thing to send
        head = w.HTML(
            f'<h2 class="ib-h2">Session created</h2>'
            f'<div class="ib-created-id">Session <code class="ib-session-id">{fmt.esc(created["id"])}'
            f'</code> for <b>{fmt.esc(s.get("candidate_name"))}</b> · '
            f'{fmt.esc(fmt.challenge_title(s))} · {fmt.minutes(s.get("time_limit_seconds"))} · '
            f'{int(s.get("token_budget") or 0):,} tokens</div>'
            + ('<p class="ib-help">Send the candidate this link. It opens their own JupyterLab '
               'in one browser; nothing to install. ' + fmt.esc(CLOCK_STARTS) + ' You can issue '
               'a new link on the <a href="monitor.ipynb">monitor</a>.</p>'
               if link else
               '<p class="ib-help">Hand the candidate one of these. ' + fmt.esc(CLOCK_STARTS)
               + ' Lost it? Issue a new one below, or from the '
               '<a href="monitor.ipynb">monitor</a>.</p>'))
        self.result.children = [head, *boxes(self.client.url, created)]
        self.result.add_class("ib-card")
        self.handover.set_session(s)
        self.handover.widget.layout.display = "flex"


def _reason(e: Exception) -> str:
    if isinstance(e, IBClientError):
        return e.message
    return str(e) or type(e).__name__
