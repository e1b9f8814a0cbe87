// Interview Buddy: the candidate's workspace in JupyterLab.
//
// On a candidate's server (one with the ib_extension.candidate server extension, which
// answers ib/candidate/workspace) this puts the interview panel (the challenge, the clock
// and token meter, the AI chat) in the right side panel from the first second, opens the
// interview notebook beside it, saves every few seconds, tells the service the workspace
// was opened (that starts the clock), covers the notebook while the interview is paused and
// makes it read-only once it has ended. Everywhere else it does nothing.
//
// The panel itself is the one the notebook widget shows (ib_extension/candidate/panel/
// panel.js), loaded from the candidate's server; this file gives it a host: the notebook
// to save, insert code into and run the visible tests in.

import { ILabShell, ILayoutRestorer } from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { PageConfig, URLExt } from "@jupyterlab/coreutils";
import { IDocumentManager } from "@jupyterlab/docmanager";
import { IMainMenu } from "@jupyterlab/mainmenu";
import { INotebookTracker, NotebookActions } from "@jupyterlab/notebook";
import { ServerConnection } from "@jupyterlab/services";
import { ISettingRegistry } from "@jupyterlab/settingregistry";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";

const PANEL_ID = "ib-interview-panel";
const COMMANDS = { open: "interview-buddy:open-panel", focus: "interview-buddy:focus-chat" };
const DOCMANAGER = "@jupyterlab/docmanager-extension:plugin";
const TESTS_MIME = "application/vnd.interview-buddy.visible-tests+json";
const ENDED = new Set(["completed", "expired"]);
// The side panel's share of the width the first time (the candidate can drag it after).
const FIRST_SIZES = [0, 0.6, 0.4];

const icon = new LabIcon({
  name: "interview-buddy:panel",
  svgstr: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">'
    + '<path class="jp-icon3" fill="#616161" d="M12 2 22 12 12 22 2 12z"/></svg>',
});

async function request(path, init = {}) {
  const settings = ServerConnection.makeSettings();
  return ServerConnection.makeRequest(URLExt.join(settings.baseUrl, path), init, settings);
}

// ---- the host the panel runs in: the workspace's notebook -------------------------------
class Host {
  constructor(app, workspace, tracker, docManager) {
    this.app = app;
    this.workspace = workspace;
    this.tracker = tracker;
    this.docManager = docManager;
    this.status = null;
  }

  // The interview notebook's panel, if it is open.
  interviewNotebook() {
    return this.tracker.find((w) => w.context.path === this.workspace.notebook) || null;
  }

  async save() {
    const nb = this.interviewNotebook();
    if (nb && !nb.context.model.readOnly) await nb.context.save();
  }

  insertBelow(code) {
    const nb = this.tracker.currentWidget || this.interviewNotebook();
    if (!nb || nb.context.model.readOnly) return false;
    NotebookActions.insertBelow(nb.content);
    const cell = nb.content.activeCell;
    if (cell && cell.model.type !== "code") NotebookActions.changeCellType(nb.content, "code");
    nb.content.activeCell.model.sharedModel.setSource(code);
    this.app.shell.activateById(nb.id);
    nb.content.activeCell.editor?.focus();
    return true;
  }

  // Run the challenge's visible tests against the notebook's kernel, as it is now.
  async runTests() {
    const nb = this.interviewNotebook();
    const kernel = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
    if (!kernel) throw new Error("Open the interview notebook and start its kernel to run the tests.");
    const code = '__import__("ib_extension.candidate.visible_tests", fromlist=["run"]).run(globals())';
    const future = kernel.requestExecute({ code, store_history: false, silent: false });
    let results = null;
    let error = null;
    future.onIOPub = (msg) => {
      const data = msg.content && msg.content.data;
      if (data && data[TESTS_MIME]) results = data[TESTS_MIME];
      if (msg.header.msg_type === "error") error = `${msg.content.ename}: ${msg.content.evalue}`;
    };
    await future.done;
    if (results) return results;
    throw new Error(error || "The tests did not report back (was the kernel interrupted?).");
  }

  // What the session's state means for the whole workspace, not only the panel.
  onState(state) {
    const before = this.status;
    this.status = state.status;
    if (before === state.status) return;
    if (ENDED.has(state.status)) void this.end();
    for (const nb of this.notebooks()) this.cover(nb, state.status === "paused");
  }

  notebooks() {
    const all = [];
    this.tracker.forEach((nb) => all.push(nb));
    return all;
  }

  cover(nb, paused) {
    let cover = nb.node.querySelector(":scope > .ib-cover");
    if (paused && !cover) {
      cover = document.createElement("div");
      cover.className = "ib-cover";
      cover.setAttribute("role", "alert");
      cover.innerHTML = "<div class='ib-cover-box'><strong>The interview is paused.</strong>"
        + "<span>Running code was interrupted, and the clock is stopped. You can continue when "
        + "the interviewer resumes.</span></div>";
      nb.node.append(cover);
    }
    if (cover) cover.hidden = !paused;
    nb.content.node.inert = paused;  // no typing under the cover either
  }

  // The end: save what is on screen (the server hands it in), then read-only.
  async end() {
    try {
      await this.save();
    } catch (e) {
      console.warn("Interview Buddy: the last save failed", e);
    }
    this.docManager.autosave = false;
    for (const nb of this.notebooks()) this.readOnly(nb);
  }

  readOnly(nb) {
    nb.context.model.readOnly = true;
    for (const cell of nb.content.widgets) {
      cell.syncEditable = false;  // read-only here, without writing it into the notebook
      cell.readOnly = true;
    }
    nb.node.classList.add("ib-ended");
    if (!nb.node.querySelector(":scope > .ib-ended-bar")) {
      const bar = document.createElement("div");
      bar.className = "ib-ended-bar";
      bar.setAttribute("role", "status");
      bar.textContent = "The interview has ended: this notebook is read-only. The interview "
        + "panel says when your work was handed in.";
      nb.node.append(bar);
    }
    nb.context.model.dirty = false;
  }
}

// ---- the side panel -----------------------------------------------------------------
class InterviewPanel extends Widget {
  constructor(host, workspace) {
    super();
    this.id = PANEL_ID;
    this.addClass("ib-side");
    this.title.icon = icon;
    this.title.caption = "Interview: the challenge, your time and tokens, the AI assistant";
    this.title.label = "";
    this.host = host;
    this.workspace = workspace;
    this.node.setAttribute("role", "region");
    this.node.setAttribute("aria-label", "Interview panel");
  }

  async load() {
    const base = PageConfig.getBaseUrl();
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = URLExt.join(base, "ib/candidate/panel.css");
    document.head.append(css);
    const mod = await import(/* webpackIgnore: true */ URLExt.join(base, "ib/candidate/panel.js"));
    const values = { rules: this.workspace.rules, notebook_path: this.workspace.notebook };
    const model = { get: (key) => values[key], on() {}, off() {} };
    this.dispose_panel = mod.default.render({ model, el: this.node, host: this.host });
  }

  focusInput() {
    const input = this.node.querySelector(".ib-input");
    if (input && !input.disabled) input.focus();
    else this.node.querySelector(".ib-panel")?.focus();
  }

  dispose() {
    if (this.dispose_panel) this.dispose_panel();
    super.dispose();
  }
}

function firstLayout(labShell) {
  // The first time in this browser, make room: the file browser folded away, the panel at
  // 40 %. After that JupyterLab restores the candidate's own layout.
  const key = "interview-buddy:first-layout";
  if (localStorage.getItem(key)) return;
  localStorage.setItem(key, "1");
  labShell.collapseLeft();
  const split = labShell._hsplitPanel;  // no public setter for the side panels' width
  if (split && typeof split.setRelativeSizes === "function") split.setRelativeSizes(FIRST_SIZES);
}

async function useFastAutosave(settings, seconds) {
  if (!settings) return;
  try {
    const current = await settings.get(DOCMANAGER, "autosaveInterval");
    if (current.composite !== seconds) await settings.set(DOCMANAGER, "autosaveInterval", seconds);
    const autosave = await settings.get(DOCMANAGER, "autosave");
    if (autosave.composite !== true) await settings.set(DOCMANAGER, "autosave", true);
  } catch (e) {
    console.warn("Interview Buddy: could not set the autosave interval", e);
  }
}

const plugin = {
  id: "@interview-buddy/workspace:plugin",
  description: "The candidate's interview panel beside the notebook",
  autoStart: true,
  requires: [ILabShell, INotebookTracker, IDocumentManager],
  optional: [ILayoutRestorer, IMainMenu, ICommandPalette, ISettingRegistry],
  activate: async (app, labShell, tracker, docManager, restorer, mainMenu, palette, settings) => {
    const answer = await request("ib/candidate/workspace");
    if (!answer.ok) return;  // not a candidate's server: stay out of the way
    const workspace = await answer.json();
    docManager.autosaveInterval = workspace.autosave_seconds;
    docManager.autosave = true;
    void useFastAutosave(settings, workspace.autosave_seconds);

    const host = new Host(app, workspace, tracker, docManager);
    let panel = null;
    const showPanel = async (focus) => {
      if (!panel || panel.isDisposed) {
        panel = new InterviewPanel(host, workspace);
        app.shell.add(panel, "right", { rank: 0 });
        await panel.load();
      }
      labShell.activateById(panel.id);
      if (focus) panel.focusInput();
    };

    app.commands.addCommand(COMMANDS.open, {
      label: "Interview Panel",
      caption: "Show the interview panel: the challenge, your time and tokens, the AI assistant",
      execute: () => showPanel(false),
    });
    app.commands.addCommand(COMMANDS.focus, {
      label: "Ask the AI Assistant",
      caption: "Go to the interview panel's chat box",
      execute: () => showPanel(true),
    });
    app.commands.addKeyBinding({ command: COMMANDS.focus, keys: ["Accel Shift 1"], selector: "body" });
    if (mainMenu) mainMenu.viewMenu.addGroup([{ command: COMMANDS.open }, { command: COMMANDS.focus }], 0);
    if (palette) {
      palette.addItem({ command: COMMANDS.open, category: "Interview" });
      palette.addItem({ command: COMMANDS.focus, category: "Interview" });
    }
    // New notebooks follow the session's state too (covered while paused, read-only after).
    tracker.widgetAdded.connect((_, nb) => {
      void nb.context.ready.then(() => {
        if (host.status === "paused") host.cover(nb, true);
        if (ENDED.has(host.status)) host.readOnly(nb);
      });
    });

    // The candidate has opened the workspace: the service starts the clock (once).
    void request("ib/api/me/opened", { method: "POST" }).catch(() => {});
    // After the layout is restored (which waits for every plugin, this one too).
    void app.restored.then(async () => {
      await showPanel(false);
      firstLayout(labShell);
      if (!host.interviewNotebook()) docManager.openOrReveal(workspace.notebook);
    });
  },
};

export default [plugin];
