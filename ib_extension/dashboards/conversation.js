// The live conversation of one session. Text goes in with textContent only (a message
// is untrusted). The view sticks to the bottom while the reader is there, and keeps
// their place when they have scrolled up to read.
const STICK_PX = 40;

function splitFences(text) {
  // [{code: bool, text}] from ``` fences; the language tag after ``` is dropped.
  const parts = [];
  const chunks = (text || "").split("```");
  chunks.forEach((chunk, i) => {
    if (i % 2 === 1) {
      const nl = chunk.indexOf("\n");
      chunk = nl >= 0 && /^[\w+-]*$/.test(chunk.slice(0, nl)) ? chunk.slice(nl + 1) : chunk;
    }
    if (chunk.length) parts.push({ code: i % 2 === 1, text: chunk });
  });
  return parts;
}

function fill(body, text) {
  body.replaceChildren();
  for (const part of splitFences(text)) {
    const node = document.createElement(part.code ? "pre" : "div");
    node.className = part.code ? "ib-msg-code" : "ib-msg-text";
    node.textContent = part.text;
    body.appendChild(node);
  }
}

function metaText(m) {
  const bits = [];
  if (m.created_at) bits.push(new Date(m.created_at).toLocaleTimeString());
  // What the provider billed is on the reply (its prompt and completion); a question
  // carries only an estimate, which is never charged, so it shows none.
  if (m.role === "assistant" && m.status !== "streaming" && m.completion_tokens != null)
    bits.push(`${m.prompt_tokens || 0} prompt + ${m.completion_tokens} completion tokens billed`);
  if (m.latency_ms) bits.push(`${(m.latency_ms / 1000).toFixed(1)} s`);
  if (m.status && m.status !== "complete") bits.push(m.status === "streaming" ? "writing…" : m.status);
  return bits.join(" · ");
}

function render({ model, el }) {
  el.classList.add("ib-convo");
  const scroller = document.createElement("div");
  scroller.className = "ib-convo-scroll";
  scroller.tabIndex = 0;  // keyboard users can scroll it too
  scroller.setAttribute("role", "log");
  scroller.setAttribute("aria-label", "Conversation with the AI");
  const empty = document.createElement("div");
  empty.className = "ib-convo-empty";
  el.appendChild(scroller);
  const nodes = new Map();

  // `stuck`: the reader is at the end, so new text scrolls into view. It follows the
  // reader's own scrolling; a hidden or resized view keeps the same intent.
  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_PX;
  let stuck = true;
  const toEnd = () => { scroller.scrollTop = scroller.scrollHeight; };
  scroller.addEventListener("scroll", () => { if (scroller.clientHeight) stuck = atBottom(); });
  new ResizeObserver(() => { if (stuck) toEnd(); }).observe(scroller);
  function keepPlace(change) {
    const top = scroller.scrollTop;
    change();
    if (stuck) toEnd(); else scroller.scrollTop = top;
  }

  function node(m) {
    let n = nodes.get(m.id);
    if (!n) {
      const root = document.createElement("div");
      const head = document.createElement("div");
      head.className = "ib-msg-head";
      const who = document.createElement("span");
      who.className = "ib-msg-who";
      const meta = document.createElement("span");
      meta.className = "ib-msg-meta";
      head.append(who, meta);
      const body = document.createElement("div");
      body.className = "ib-msg-body";
      root.append(head, body);
      root.dataset.messageId = m.id;
      scroller.appendChild(root);
      n = { root, who, meta, body, text: null };
      nodes.set(m.id, n);
    }
    return n;
  }

  function upsert(m) {
    const n = node(m);
    n.root.className = `ib-msg ib-msg-${m.role} ib-msg-status-${m.status || "complete"}`;
    n.who.textContent = m.role === "user" ? "Candidate" : "AI";
    n.meta.textContent = metaText(m);
    if (n.text !== (m.content || "")) {
      n.text = m.content || "";
      fill(n.body, n.text);
    }
  }

  function sync() {
    keepPlace(() => {
      const messages = model.get("messages") || [];
      const ids = new Set(messages.map((m) => m.id));
      for (const [id, n] of nodes) {
        if (!ids.has(id)) { n.root.remove(); nodes.delete(id); }
      }
      messages.forEach(upsert);
      // Keep document order = conversation order (a message can arrive late).
      messages.forEach((m) => scroller.appendChild(nodes.get(m.id).root));
      empty.textContent = model.get("empty_text");
      if (messages.length) empty.remove(); else scroller.appendChild(empty);
    });
  }

  model.on("change:messages", sync);
  model.on("change:session_id", () => {  // another conversation opens at its end
    for (const n of nodes.values()) n.root.remove();
    nodes.clear();
    stuck = true;
    sync();
  });
  model.on("msg:custom", (msg) => {
    if (msg.type !== "delta") return;
    keepPlace(() => {
      const n = nodes.get(msg.id) || (upsert({ id: msg.id, role: "assistant", content: "", status: "streaming" }), nodes.get(msg.id));
      n.text = (n.text || "") + msg.text;
      fill(n.body, n.text);
    });
  });
  sync();
}

export default { render };
