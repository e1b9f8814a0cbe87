// The candidate's panel front-end (anywidget). DOMPurify, marked and hljs are defined by
// the vendored prelude that widget.py puts in front of this file.
//
// Everything here talks to the ib service through the candidate's own Jupyter server
// (same origin, the Jupyter session's cookie and XSRF token; candidate.py adds the
// session token), never through the kernel: a busy kernel cannot freeze the chat or the
// clock. The conversation is drawn from the service's messages and its live feed, so
// replies asked from code (panel.ask) or any OpenAI client show up here too. The
// formulas mirror ib_extension/panel/view.py (same names), with its constants in `rules`.
//
// It runs in two places: as a notebook widget (anywidget: `render({model, el})`) and in the
// workspace's side panel (labextension/: `render({model, el, host})`). The `host` is the
// workspace around it: save the notebook, insert code below, run the visible tests, and
// follow the session's state (cover while paused, read-only after the end). Without a
// host those actions are simply not offered.

const FEED_TIMEOUT = 25;      // seconds a feed long-poll may wait
const RETRY_MS = 2000;        // pause before reconnecting after a failed call

// ---- Jupyter server access ------------------------------------------------------------
function baseUrl() {
  try {
    const cfg = JSON.parse(document.getElementById("jupyter-config-data").textContent);
    return cfg.baseUrl || "/";
  } catch {
    return "/";
  }
}

function xsrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(path, { method = "GET", body, signal } = {}) {
  const r = await fetch(baseUrl() + path, {
    method, signal, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-XSRFToken": xsrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw await apiError(r);
  return r;
}

async function apiError(r) {
  let err = {};
  try { err = (await r.json()).error || {}; } catch { /* not our error shape */ }
  return new ApiError(r.status, err.code || "http_error",
    err.message || `The request failed (HTTP ${r.status}).`);
}

const getJSON = async (path, opts) => (await call(path, opts)).json();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the formulas of view.py ------------------------------------------------------------
function level(rules, thresholds, percentLeft) {
  const index = thresholds.filter((t) => percentLeft <= t).length;
  return rules.levels[Math.min(index, rules.levels.length - 1)];
}

function pct(part, whole) {
  return whole <= 0 ? 0 : Math.max(0, Math.min(100, (100 * part) / whole));
}

function timeLeft(state, elapsed) {
  let left = Number(state.time_left_seconds || 0);
  if (state.status === "active") left -= elapsed;
  return Math.max(0, left);
}

// The service says why the AI is closed (state.blocked, its own sentence): never re-derived.
function blocked(state) {
  return state.blocked ? { key: state.blocked.code, sentence: state.blocked.message } : null;
}

function statusKey(rules, state) {
  const b = blocked(state);
  const key = b ? rules.pill_for[b.key] : null;
  if (key === "completed" && state.end_reason === "submitted") return "submitted";
  return key || (state.status === "created" ? "created" : "active");
}

function estimateTokens(rules, text) {
  return text ? Math.ceil(text.length / rules.chars_per_token) + rules.message_overhead : 0;
}

function conversation(history) {
  return history.filter((m) => (m.role === "user" || m.role === "assistant") && m.content)
    .map((m) => ({ role: m.role, content: m.content }));
}

function expectedReply(rules, history) {
  const replies = history.filter((m) => m.role === "assistant" && m.completion_tokens)
    .map((m) => m.completion_tokens);
  return replies.length
    ? Math.round(replies.reduce((a, b) => a + b, 0) / replies.length) : rules.default_reply_tokens;
}

function nextMessageCost(rules, state, history, text) {
  let lastPrompt = -1;
  history.forEach((m, i) => { if (m.role === "user" && m.prompt_tokens) lastPrompt = i; });
  let prompt;
  if (lastPrompt >= 0) {
    prompt = history[lastPrompt].prompt_tokens + history.slice(lastPrompt + 1)
      .reduce((n, m) => n + (m.completion_tokens || estimateTokens(rules, m.content || "")), 0);
  } else {
    const statement = (state.challenge || {}).statement || "";
    prompt = rules.system_prompt_tokens + estimateTokens(rules, statement) +
      conversation(history).reduce((n, m) => n + estimateTokens(rules, m.content), 0);
  }
  return prompt + estimateTokens(rules, text) + expectedReply(rules, history);
}

function messagesLeft(rules, state, history) {
  const cost = nextMessageCost(rules, state, history, "x".repeat(200));
  return Math.max(0, Math.floor(Number(state.tokens_left || 0) / Math.max(1, cost)));
}

function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

// ---- untrusted Markdown -------------------------------------------------------------------
// marked makes HTML, DOMPurify strips anything active (scripts, on* handlers, javascript:
// URLs, forms, remote images), then code is highlighted with highlight.js (which escapes).
const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "iframe", "svg", "math"],
  FORBID_ATTR: ["style"],
};
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

// A reply still streaming is Markdown cut anywhere: close what is open (a code fence,
// inline code, bold, italics, strikethrough) and hold back a link whose address has not
// arrived, so it renders as it will look instead of showing raw markers.
function closeOpenMarkdown(text) {
  const fences = (text.match(/^\s*(```|~~~)/gm) || []).length;
  if (fences % 2) return text.endsWith("\n") ? text + "```" : text + "\n```";
  const lines = text.split("\n");
  let last = lines.pop();
  last = last.replace(/\[[^\]]*\]\([^)]*$/, "").replace(/\[[^\]]*$/, "");
  const open = (re) => (last.match(re) || []).length % 2 === 1;
  const inlineCode = open(/`/g);
  if (inlineCode) last += "`";
  else {
    if (open(/\*\*/g)) last += "**";
    if (open(/~~/g)) last += "~~";
    const single = last.replace(/\*\*/g, "");
    if (open(/(?<![\w*])\*(?![\s*])|(?<=\S)\*(?!\w)/g) && /\*\S/.test(single)) last += "*";
  }
  return [...lines, last].join("\n");
}

// `breaks`: a typed line break is a line break (the candidate's own messages); statements
// and replies are CommonMark, so a source file's hard-wrapped lines reflow.
function renderMarkdown(target, text, { breaks = false } = {}) {
  target.innerHTML = DOMPurify.sanitize(marked.parse(text || "", { gfm: true, breaks, async: false }), PURIFY);
  for (const code of target.querySelectorAll("pre code")) {
    try { hljs.highlightElement(code); } catch { /* unknown language: leave it plain */ }
  }
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

const fmt = (n) => Number(n || 0).toLocaleString("en-US");

const EVENT_NOTES = {
  "session.started": () => "The interview has started: the clock is running.",
  "session.paused": () => "The interviewer paused the session.",
  "session.resumed": () => "The interviewer resumed the session.",
  "session.locked": () => "The interviewer locked the AI assistant.",
  "session.unlocked": () => "The AI assistant is available again.",
  "session.ended": (p) => (p && p.reason === "submitted") ? null : "The interviewer ended the interview.",
  "session.expired": () => "Time is up.",
  "session.submitted": () => "Your notebook was submitted. Thank you!",
  "time.extended": (p) => `The interviewer gave you ${Math.round((p.seconds || 0) / 60)} more minutes.`,
  "tokens.extended": (p) => `The interviewer gave you ${fmt(p.tokens)} more tokens.`,
  "warning": (p) => `Less than ${p.threshold}% of your ${p.kind === "time" ? "time" : "token budget"} `
    + `is left: ${p.kind === "time" ? clock(p.left || 0) : `${fmt(p.left)} tokens`}.`,
  "refusal": (p) => p.message,
  "chat.cut": (p) => p.reason === "client_stopped" ? null  // the Stop button says so itself
    : `A reply was cut off${p.reason ? ` (${String(p.reason).replace(/_/g, " ")})` : ""}.`,
  "provider.error": (p) => p.message,
};
const WARN_EVENTS = new Set(["warning", "refusal", "chat.cut", "provider.error", "session.expired"]);

// ---- the panel ------------------------------------------------------------------------------
const ENDED = new Set(["completed", "expired"]);

// Without the workspace's labextension (a panel displayed in a notebook cell): save through
// JupyterLab's command when the page exposes the app; nothing else.
function cellHost() {
  const app = window.jupyterapp;
  return {
    save: async () => {
      if (app && app.commands.hasCommand("docmanager:save")) await app.commands.execute("docmanager:save");
    },
  };
}

function localTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }) : "";
}

class Panel {
  constructor(model, root, host) {
    this.model = model;
    this.host = host || cellHost();
    this.rules = model.get("rules");
    this.root = root;
    this.state = null;
    this.stateAt = performance.now();
    this.history = [];
    this.nodes = new Map();       // message id -> its DOM parts
    this.cursor = null;
    this.epoch = null;
    this.alive = true;
    this.sending = null;          // AbortController of our own streaming request
    this.feedAbort = new AbortController();
    this.lastNote = { text: "", at: 0 };
    this.build();
  }

  // -- layout --
  build() {
    const r = this.root;
    r.classList.add("ib-panel");
    r.tabIndex = -1;  // a focus target for the "go to the panel" command
    r.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.sending) {  // Esc stops a reply, wherever the focus is here
        e.preventDefault();
        e.stopPropagation();
        this.sending.abort();
      }
    });
    const head = el("div", "ib-head");
    const brand = el("div", "ib-brand");
    brand.append(el("span", "ib-logo", "◆"), el("span", "ib-brand-name", "Interview Buddy"));
    brand.firstChild.setAttribute("aria-hidden", "true");
    this.pill = el("span", "ib-pill", "Connecting…");
    this.pill.setAttribute("role", "status");
    this.submitBtn = el("button", "ib-btn ib-btn-submit", "Submit");
    this.submitBtn.title = "Hand in your notebook as your final answer and end the interview";
    this.submitBtn.onclick = () => this.askToSubmit();
    head.append(brand, this.pill, this.submitBtn);

    // In-page confirmation, as every other confirmation in Interview Buddy.
    this.confirmBox = el("div", "ib-confirm");
    this.confirmBox.hidden = true;
    this.confirmBox.setAttribute("role", "alertdialog");
    this.confirmBox.setAttribute("aria-label", "Confirm submission");
    const question = el("p", "ib-confirm-text", "Hand in your notebook and end the interview? "
      + "You cannot chat or change your work afterwards.");
    this.confirmYes = el("button", "ib-btn ib-btn-primary ib-confirm-yes", "Yes, submit");
    this.confirmYes.onclick = () => this.submit();
    const no = el("button", "ib-btn ib-btn-plain", "Cancel");
    no.onclick = () => this.closeConfirm();
    this.confirmBox.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.stopPropagation(); this.closeConfirm(); }
    });
    this.confirmBox.append(question, this.confirmYes, no);

    this.challenge = el("details", "ib-challenge");
    this.challenge.open = true;
    this.challengeSummary = el("summary", "ib-challenge-summary");
    this.challengeTitle = el("span", "ib-challenge-title", "Loading the challenge…");
    this.challengeTags = el("span", "ib-tags");
    this.challengeSummary.append(this.challengeTitle, this.challengeTags);
    this.statement = el("div", "ib-md ib-statement");
    this.tests = el("details", "ib-tests");
    const testsSummary = el("summary", "ib-tests-summary", "Visible tests");
    this.testsCode = el("div", "ib-md ib-tests-code");
    this.tests.append(testsSummary, this.testsCode);
    this.tests.hidden = true;
    this.testBar = el("div", "ib-test-bar");
    this.runTestsBtn = el("button", "ib-btn ib-btn-plain ib-run-tests", "Run tests");
    this.runTestsBtn.title = "Run the visible tests against the code you have run in the notebook";
    this.runTestsBtn.onclick = () => this.runTests();
    this.testResults = el("div", "ib-test-results");
    this.testResults.setAttribute("aria-live", "polite");
    this.testBar.append(this.runTestsBtn, this.testResults);
    this.testBar.hidden = true;
    this.challenge.append(this.challengeSummary, this.statement, this.tests, this.testBar);

    const meter = el("div", "ib-meter");
    this.timeBox = this.gauge("Time left");
    this.tokenBox = this.gauge("Tokens left");
    meter.append(this.timeBox.box, this.tokenBox.box);

    this.banner = el("div", "ib-banner");
    this.banner.hidden = true;
    this.banner.setAttribute("role", "status");
    this.bannerTitle = el("div", "ib-banner-title");
    this.bannerMore = el("div", "ib-banner-more");
    this.banner.append(this.bannerTitle, this.bannerMore);
    this.log = el("div", "ib-log");
    this.log.setAttribute("role", "log");
    this.log.setAttribute("aria-live", "polite");
    this.log.setAttribute("aria-label", "Conversation with the AI assistant");
    this.log.tabIndex = 0;  // scrollable by keyboard
    this.empty = el("div", "ib-empty", "Ask the AI assistant anything about the challenge. "
      + "Every message uses tokens from your budget.");
    this.log.append(this.empty);

    const composer = el("div", "ib-composer");
    this.input = el("textarea", "ib-input");
    this.input.rows = 3;
    this.input.setAttribute("aria-label", "Message to the AI assistant");
    this.input.placeholder = "Ask the AI…  (Enter sends, Shift+Enter starts a new line, Esc stops a reply)";
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
      // Keep notebook shortcuts (Shift+Enter runs a cell...) out of the chat box, but let
      // Ctrl/Cmd combinations such as Ctrl+S through to JupyterLab.
      if (!e.ctrlKey && !e.metaKey && e.key !== "Escape") e.stopPropagation();
    });
    this.input.addEventListener("input", () => this.drawEstimate());
    const bar = el("div", "ib-composer-bar");
    this.estimate = el("span", "ib-estimate");
    this.stopBtn = el("button", "ib-btn ib-btn-stop", "Stop");
    this.stopBtn.title = "Stop the reply (Esc)";
    this.stopBtn.hidden = true;
    this.stopBtn.onclick = () => this.sending && this.sending.abort();
    this.sendBtn = el("button", "ib-btn ib-btn-send", "Send");
    this.sendBtn.onclick = () => this.send();
    bar.append(this.estimate, this.stopBtn, this.sendBtn);
    composer.append(this.input, bar);

    r.append(head, this.confirmBox, this.challenge, meter, this.banner, this.log, composer);
  }

  gauge(label) {
    const box = el("div", "ib-gauge");
    const top = el("div", "ib-gauge-top");
    const name = el("span", "ib-gauge-label", label);
    const value = el("span", "ib-gauge-value", "–");
    top.append(name, value);
    const track = el("div", "ib-track");
    track.setAttribute("aria-hidden", "true");
    const fill = el("div", "ib-fill");
    track.append(fill);
    const sub = el("div", "ib-gauge-sub", "");
    box.append(top, track, sub);
    return { box, value, fill, sub };
  }

  start() {
    this.follow();
    this.timer = setInterval(() => this.drawClock(), 1000);
  }

  destroy() {
    this.alive = false;
    clearInterval(this.timer);
    this.feedAbort.abort();
  }

  // -- the live feed --
  async follow() {
    while (this.alive) {
      try {
        if (this.cursor === null) await this.reload();
        const q = `cursor=${this.cursor}&epoch=${encodeURIComponent(this.epoch)}&timeout=${FEED_TIMEOUT}`;
        const feed = await getJSON(`ib/api/me/feed?${q}`, { signal: this.feedAbort.signal });
        if (feed.reset) { this.cursor = null; continue; }
        this.cursor = feed.cursor;
        this.epoch = feed.epoch;
        for (const item of feed.items) this.apply(item);
        this.setOnline(true);
      } catch (e) {
        if (!this.alive) return;
        // A refusal (say, a revoked token) has a sentence worth showing; a network error not.
        this.setOnline(false, e instanceof ApiError ? e.message : null);
        this.cursor = null;
        await sleep(RETRY_MS);
      }
    }
  }

  async reload() {
    const head = await getJSON("ib/api/me/feed");
    const [state, messages] = await Promise.all([getJSON("ib/api/me"), getJSON("ib/api/me/messages")]);
    this.cursor = head.cursor;
    this.epoch = head.epoch;
    this.history = [];
    this.nodes.clear();
    this.log.replaceChildren(this.empty);  // redrawn from the service, in its order
    this.empty.hidden = false;
    for (const m of messages.messages) this.upsert(m);
    // In a notebook cell, room for the chat once there is one; the side panel scrolls it.
    if (this.state === null && !this.root.classList.contains("ib-side")) {
      this.challenge.open = messages.messages.length === 0;
    }
    this.setState(state);
    this.setOnline(true);
  }

  apply(item) {
    const d = item.data;
    if (item.kind === "session") this.setState(d);
    else if (item.kind === "message") this.upsert(d);
    else if (item.kind === "delta") this.appendDelta(d.message_id, d.text);
    else if (item.kind === "event") this.noteEvent(d);
  }

  setOnline(online, why) {
    this.offline = !online;
    this.offlineWhy = why;
    this.drawState();
  }

  // -- state and meter --
  setState(state) {
    this.state = state;
    this.stateAt = performance.now();
    const c = state.challenge || {};
    this.challengeTitle.textContent = c.title || "Your challenge";
    this.challengeTags.replaceChildren(...[c.difficulty, c.category].filter(Boolean)
      .map((t) => el("span", "ib-tag", t)));
    if (this.statementText !== c.statement) {
      this.statementText = c.statement;
      renderMarkdown(this.statement, c.statement || "_No statement._");
    }
    if (this.testsText !== c.visible_tests) {
      this.testsText = c.visible_tests;
      this.tests.hidden = !c.visible_tests;
      renderMarkdown(this.testsCode, "```python\n" + (c.visible_tests || "") + "\n```");
    }
    this.testBar.hidden = !(c.visible_tests && this.host.runTests);
    if (this.host.onState) this.host.onState(state);
    this.drawState();
  }

  elapsed() {
    return (performance.now() - this.stateAt) / 1000;
  }

  drawState() {
    if (!this.state) return;
    const s = this.state;
    const key = statusKey(this.rules, s);
    this.pill.textContent = this.offline ? "Reconnecting…" : this.rules.status_labels[key];
    this.pill.className = `ib-pill ib-pill-${this.offline ? "offline" : key}`;
    const tokLeft = Number(s.tokens_left || 0);
    const p = pct(tokLeft, Number(s.token_budget || 0));
    this.tokenBox.value.textContent = `${fmt(tokLeft)} / ${fmt(s.token_budget)}`;
    this.tokenBox.fill.style.width = `${p}%`;
    this.tokenBox.box.dataset.level = level(this.rules, s.thresholds, p);
    const n = messagesLeft(this.rules, s, this.history);
    this.tokenBox.sub.textContent = `${fmt(s.tokens_used)} used · about ${fmt(n)} more message${n === 1 ? "" : "s"}`;
    this.drawClock();
    this.drawEstimate();
  }

  // The banner: why the AI is closed (the service's sentence), what the candidate can still
  // do, and once the service holds the final notebook, when it was handed in.
  drawBanner() {
    const s = this.state;
    const b = blocked(s);
    let title = null, more = "", reason = "";
    if (this.offline) {
      title = this.offlineWhy || "The interview service cannot be reached right now; retrying…";
      reason = "offline";
    } else if (b) {
      title = b.sentence;
      more = this.rules.can_still[b.key] || "";
      reason = b.key;
    }
    if (!this.offline && s.handed_in) {
      const h = s.handed_in;
      const what = [h.path, h.code_cells != null ? `${h.code_cells} code cell${h.code_cells === 1 ? "" : "s"}` : ""]
        .filter(Boolean).join(", ");
      more = `Your work was handed in at ${localTime(h.at)} ${this.rules.handed_in_by[h.by] || ""}`
        + `${what ? ` (${what})` : ""}.`;
      if (s.grade && s.grade.total) more += ` Tests on what you handed in: ${s.grade.passed} of ${s.grade.total} passed.`;
    } else if (!this.offline && ENDED.has(s.status)) {
      more = "Handing in your notebook as it was at the end…";
    }
    this.banner.hidden = !title;
    this.bannerTitle.textContent = title || "";
    this.bannerMore.textContent = more;
    this.bannerMore.hidden = !more;
    this.banner.dataset.reason = reason;
  }

  drawClock() {
    if (!this.state) return;
    const s = this.state;
    const left = timeLeft(s, this.elapsed());
    const p = pct(left, Number(s.time_limit_seconds || 0));
    this.timeBox.value.textContent = clock(left);
    this.timeBox.fill.style.width = `${p}%`;
    this.timeBox.box.dataset.level = level(this.rules, s.thresholds, p);
    this.timeBox.sub.textContent = s.status === "created" ? "starts when you open the workspace"
      : s.status === "paused" ? "paused — the clock is stopped"
      : s.status === "active" ? `of ${clock(s.time_limit_seconds)}` : "the interview is over";
    this.drawBanner();
    const closed = Boolean(blocked(s)) || this.offline;
    this.input.disabled = closed;
    this.sendBtn.disabled = closed || Boolean(this.sending);
    const over = ENDED.has(s.status);
    this.submitBtn.disabled = over;
    this.submitBtn.textContent = s.end_reason === "submitted" ? "Submitted" : "Submit";
    this.runTestsBtn.disabled = over || s.status === "paused" || Boolean(this.testing);
    if (over) this.closeConfirm();
    this.root.dataset.status = statusKey(this.rules, s);
  }

  drawEstimate() {
    if (!this.state) return;
    const text = this.input.value;
    if (!text.trim()) {
      this.estimate.textContent = "";
      this.estimate.classList.remove("ib-over");
      return;
    }
    const cost = nextMessageCost(this.rules, this.state, this.history, text);
    const reply = expectedReply(this.rules, this.history);
    const left = Number(this.state.tokens_left || 0);
    this.estimate.textContent = `≈ ${fmt(cost)} tokens: ${fmt(cost - reply)} to send it with the `
      + `conversation so far, about ${fmt(reply)} for the reply · ${fmt(left)} left`;
    this.estimate.classList.toggle("ib-over", cost > left);
  }

  // -- messages --
  upsert(m) {
    const i = this.history.findIndex((h) => h.id === m.id);
    if (i >= 0) this.history[i] = { ...this.history[i], ...m };
    else this.history.push(m);
    this.drawMessage(this.history[i >= 0 ? i : this.history.length - 1]);
  }

  appendDelta(id, text) {
    const m = this.history.find((h) => h.id === id);
    if (!m || m.status !== "streaming") return;
    m.content = (m.content || "") + text;
    this.drawMessage(m);
  }

  drawMessage(m) {
    let node = this.nodes.get(m.id);
    if (!node) {
      node = this.newMessageNode(m);
      this.nodes.set(m.id, node);
      this.log.append(node.box);
      this.empty.hidden = true;
    }
    node.message = m;
    if (!node.pending) {
      // Markdown re-renders at most once a frame while a reply streams in.
      node.pending = requestAnimationFrame(() => {
        node.pending = 0;
        this.renderMessage(node);
      });
    }
  }

  newMessageNode(m) {
    const box = el("article", `ib-msg ib-msg-${m.role === "user" ? "user" : "ai"}`);
    box.dataset.messageId = m.id;
    const head = el("div", "ib-msg-head");
    const who = el("span", "ib-who", m.role === "user" ? "You" : "AI assistant");
    const badge = el("span", "ib-badge");
    const copy = el("button", "ib-icon-btn ib-copy-msg", "Copy");
    copy.setAttribute("aria-label", `Copy this message (${m.role === "user" ? "yours" : "the AI's"})`);
    const node = { box, badge, body: el("div", "ib-md ib-msg-body"), foot: el("div", "ib-msg-foot") };
    copy.onclick = () => this.copy(node.message.content || "", node.message, "message", copy);
    head.append(who, badge, copy);
    box.append(head, node.body, node.foot);
    return node;
  }

  renderMessage(node) {
    const m = node.message;
    const nearBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
    const streaming = m.status === "streaming";
    const text = m.content || (streaming ? "" : "_(no text)_");
    renderMarkdown(node.body, streaming ? closeOpenMarkdown(text) : text, { breaks: m.role === "user" });
    for (const pre of node.body.querySelectorAll("pre")) {
      const code = pre.querySelector("code");
      const lang = ((code && code.className.match(/language-(\w+)/)) || [])[1] || "";
      const tools = el("div", "ib-code-tools");
      const btn = el("button", "ib-icon-btn ib-copy-code", "Copy code");
      btn.onclick = () => this.copy((code || pre).textContent, m, "code", btn, lang);
      tools.append(btn);
      if (this.host.insertBelow && m.role === "assistant" && !streaming) {
        const insert = el("button", "ib-icon-btn ib-insert-code", "Insert below");
        insert.title = "Insert this code into a new cell below the current one";
        insert.onclick = () => this.insert((code || pre).textContent, m, insert, lang);
        tools.append(insert);
      }
      pre.append(tools);
    }
    node.box.classList.toggle("ib-streaming", streaming);
    node.box.setAttribute("aria-busy", String(streaming));
    if (m.role === "assistant") {
      node.badge.textContent = m.completion_tokens
        ? `${fmt(m.completion_tokens)} tokens` : streaming ? "streaming…" : "";
    } else {
      node.badge.textContent = m.prompt_tokens ? `${fmt(m.prompt_tokens)} prompt tokens` : "";
    }
    node.badge.title = m.role === "assistant" ? "Tokens this reply used"
      : "Tokens the whole prompt used (instructions, conversation so far and this message)";
    const notes = { cut: "The reply was cut off here.", error: "The reply failed.",
      interrupted: "You stopped this reply." };
    node.foot.textContent = notes[m.status] || "";
    node.foot.hidden = !notes[m.status];
    if (nearBottom) this.log.scrollTop = this.log.scrollHeight;
    this.drawState();
  }

  note(text, kind = "info") {
    if (!text) return;
    const now = Date.now();
    if (this.lastNote.text === text && now - this.lastNote.at < 5000) return;  // one refusal, one line
    this.lastNote = { text, at: now };
    const n = el("div", `ib-note ib-note-${kind}`);
    renderMarkdown(n, text);
    this.log.append(n);
    this.empty.hidden = true;
    this.log.scrollTop = this.log.scrollHeight;
  }

  noteEvent(ev) {
    const make = EVENT_NOTES[ev.type];
    if (make) this.note(make(ev.payload || {}), WARN_EVENTS.has(ev.type) ? "warn" : "info");
  }

  flash(button, label) {
    const before = button.textContent;
    button.textContent = label;
    setTimeout(() => { button.textContent = before; }, 1200);
  }

  report(message, kind, text, language) {
    if (message.role !== "assistant") return;
    call("ib/api/me/events", { method: "POST", body: { type: "activity.copy", payload: {
      message_id: message.id, kind, language, chars: text.length, lines: text.split("\n").length } } })
      .catch(() => {});
  }

  async copy(text, message, kind, button, language = "") {
    await copyText(text);
    this.flash(button, "Copied");
    this.report(message, kind, text, language);
  }

  insert(text, message, button, language) {
    if (!this.host.insertBelow(text.replace(/\n$/, ""))) {
      this.note("There is no editable notebook to insert into.", "warn");
      return;
    }
    this.flash(button, "Inserted");
    this.report(message, "insert", text, language);
  }

  // -- tests --
  async runTests() {
    this.testing = true;
    this.drawClock();
    this.testResults.replaceChildren(el("p", "ib-test-summary", "Running the visible tests in your kernel…"));
    try {
      const r = await this.host.runTests();
      const summary = el("p", "ib-test-summary",
        `${r.passed} of ${r.total} visible test${r.total === 1 ? "" : "s"} passed.`);
      const list = el("ul", "ib-test-list");
      for (const t of r.tests) {
        const li = el("li", `ib-test ib-test-${t.passed ? "pass" : "fail"}`);
        li.append(el("span", "ib-test-mark", t.passed ? "✓ passed" : "✗ failed"),
          el("code", "ib-test-name", t.name));
        if (t.message) li.append(el("div", "ib-test-message", t.message));
        list.append(li);
      }
      this.testResults.replaceChildren(summary, list);
    } catch (e) {
      this.testResults.replaceChildren(el("p", "ib-test-summary ib-test-error", e.message));
    } finally {
      this.testing = false;
      this.drawClock();
    }
  }

  // -- asking --
  async send() {
    const text = this.input.value.trim();
    if (!text || this.sending || !this.state || blocked(this.state)) return;
    this.sending = new AbortController();
    this.input.value = "";
    this.stopBtn.hidden = false;
    this.drawState();
    const body = { messages: [...conversation(this.history), { role: "user", content: text }],
      stream: true, stream_options: { include_usage: true } };
    try {
      const r = await call("ib/v1/chat/completions", { method: "POST", body, signal: this.sending.signal });
      // The reply is drawn from the feed; the stream itself only tells us how it ended.
      const error = await readStreamError(r.body);
      if (error) this.note(error.message, "warn");
    } catch (e) {
      if (e.name === "AbortError") {
        this.note("You stopped the reply.");
      } else {
        this.note(e.message, "warn");
        if (e instanceof ApiError && !this.input.value) this.input.value = text;  // keep their words
      }
    } finally {
      this.sending = null;
      this.stopBtn.hidden = true;
      this.drawState();
      if (!this.input.disabled) this.input.focus();
    }
  }

  askToSubmit() {
    this.confirmBox.hidden = false;
    this.confirmYes.focus();
  }

  closeConfirm() {
    if (this.confirmBox.hidden) return;
    this.confirmBox.hidden = true;
    if (this.root.contains(document.activeElement) || document.activeElement === document.body) {
      this.submitBtn.focus();
    }
  }

  async submit() {
    this.confirmBox.hidden = true;
    const path = this.model.get("notebook_path");
    if (!path) {
      this.note("This notebook's path is unknown; run `panel.submit(\"name.ipynb\")` in a cell.", "warn");
      return;
    }
    this.submitBtn.disabled = true;
    try {
      await this.host.save();
      await call("ib/candidate/submit", { method: "POST", body: { path } });
    } catch (e) {
      this.note(`Submitting failed: ${e.message}`, "warn");
      this.submitBtn.disabled = false;
    }
  }
}

// Read a chat completion's SSE stream to its end; return the error it ended with, if any.
async function readStreamError(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let error = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const line of lines) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      try {
        const chunk = JSON.parse(line.slice(6));
        if (chunk.error) error = chunk.error;
      } catch { /* a partial line cannot happen after split; ignore anything odd */ }
    }
  }
  return error;
}

function render({ model, el: root, host }) {
  const panel = new Panel(model, root, host);
  panel.start();
  return () => panel.destroy();
}

export default { render };

// The formulas and the renderer, for tests in a plain page (anywidget uses the default).
export const testing = {
  level, pct, timeLeft, blocked, statusKey, estimateTokens, conversation, expectedReply,
  nextMessageCost, messagesLeft, clock, renderMarkdown, closeOpenMarkdown,
};
