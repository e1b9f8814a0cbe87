// One click, one file: a button per format asks the kernel to build the export, and the
// file it sends back (as a binary buffer) is saved with a temporary link.
function render({ model, el }) {
  el.classList.add("ib-downloads");
  const buttons = new Map();
  const status = document.createElement("span");
  status.className = "ib-downloads-status";
  status.setAttribute("role", "status");

  const draw = () => {
    el.replaceChildren();
    buttons.clear();
    for (const format of model.get("formats")) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "ib-download-button";
      b.dataset.format = format;
      b.textContent = format;
      b.setAttribute("aria-label", `${model.get("label")} ${format}`);
      b.title = `Download ${model.get("label")} ${format}`;
      b.addEventListener("click", () => model.send({ type: "build", format }));
      buttons.set(format, b);
      el.appendChild(b);
    }
    el.appendChild(status);
    busy();
  };
  const busy = () => {
    const building = model.get("busy");
    for (const [format, b] of buttons) b.disabled = Boolean(building);
    status.textContent = building ? `building ${building}…` : model.get("error");
  };
  model.on("change:formats", draw);
  model.on("change:label", draw);
  model.on("change:busy", busy);
  model.on("change:error", busy);
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type !== "file" || !buffers || !buffers.length) return;
    const url = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime }));
    const a = document.createElement("a");
    a.href = url;
    a.download = msg.name;
    a.style.display = "none";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });
  draw();
}

export default { render };
