// A value to hand over, and a button that copies it. The clipboard API needs a secure
// context (https or localhost); elsewhere the text is selected and copied the old way.
async function copyText(text, source) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  document.execCommand("copy");
}

function render({ model, el }) {
  el.classList.add("ib-copy");
  const label = document.createElement("div");
  label.className = "ib-copy-label";
  const row = document.createElement("div");
  row.className = "ib-copy-row";
  const code = document.createElement("pre");
  code.className = "ib-copy-text";
  const button = document.createElement("button");
  button.className = "ib-copy-button";
  button.type = "button";
  button.textContent = "Copy";
  row.append(code, button);
  el.append(label, row);

  const show = () => {
    code.textContent = model.get("text");
    label.textContent = model.get("label");
    label.style.display = model.get("label") ? "" : "none";
  };
  button.addEventListener("click", async () => {
    try {
      await copyText(model.get("text"), code);
      button.textContent = "Copied ✓";
    } catch (e) {
      button.textContent = "Select and copy by hand";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1800);
  });
  model.on("change:text", show);
  model.on("change:label", show);
  show();
}

export default { render };
