// Keyboard shortcuts for a page, listed where they act. A key pressed while typing in a
// field is the field's, not the page's.
const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

function render({ model, el }) {
  el.classList.add("ib-keys");
  const list = document.createElement("p");
  list.className = "ib-keys-list";
  el.appendChild(list);
  const draw = () => {
    list.replaceChildren();
    const head = document.createElement("span");
    head.textContent = "Keyboard: ";
    list.appendChild(head);
    model.get("shortcuts").forEach(([key, label, what], i) => {
      if (i) list.appendChild(document.createTextNode(" · "));
      const k = document.createElement("kbd");
      k.textContent = label;
      list.append(k, document.createTextNode(` ${what}`));
    });
  };
  const onKey = (event) => {
    const target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (target && (TYPING.has(target.tagName) || target.isContentEditable)) return;
    if (!model.get("shortcuts").some(([key]) => key === event.key)) return;
    event.preventDefault();
    model.send({ type: "key", key: event.key });
  };
  document.addEventListener("keydown", onKey);
  model.on("change:shortcuts", draw);
  draw();
  return () => document.removeEventListener("keydown", onKey);
}

export default { render };
