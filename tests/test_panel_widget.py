"""The panel widget without a browser: what reaches the front-end through a faked comm,
and the Python API (ask, state, history, submit) against a live ib service."""

from __future__ import annotations

import json

import comm
import nbformat
import pytest

from ib_extension.candidate.panel import ChatPanel, PanelError, view
from ib_extension.candidate.panel.widget import bundle

SECRET = "ibc_this-token-stays-in-the-kernel"


class FakeComm:
    """Stands in for the kernel's comm: records what the widget would send the browser."""

    def __init__(self, **kwargs):
        self.opened = kwargs
        self.comm_id = kwargs.get("comm_id") or "fake-comm"
        self.kernel = object()
        self.sent: list[dict] = []

    def send(self, data=None, buffers=None, **_):
        self.sent.append(data)

    def on_msg(self, callback):
        self.callback = callback

    def close(self, *_, **__):
        pass


@pytest.fixture
def fake_comms(monkeypatch):
    made: list[FakeComm] = []

    def create_comm(**kwargs):
        made.append(FakeComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return made


def opened_state(fake_comms) -> dict:
    return fake_comms[-1].opened["data"]["state"]


def test_front_end_gets_the_rules_and_code_but_never_the_token(fake_comms, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/interview.ipynb")
    panel = ChatPanel(service_url="http://127.0.0.1:9", session_token=SECRET)
    state = opened_state(fake_comms)
    assert state["rules"] == view.rules()
    assert state["notebook_path"] == "/work/interview.ipynb"
    assert state["_esm"] == bundle()
    assert "export default" in state["_esm"] and "DOMPurify.sanitize" in state["_esm"]
    assert ".ib-panel" in state["_css"]
    assert SECRET not in json.dumps(state)
    panel.close()


def test_vendored_libraries_are_bundled_without_source_map_fetches():
    code = bundle()
    for binding in ("const DOMPurify =", "const { marked } =", "const hljs ="):
        assert binding in code
    assert "sourceMappingURL" not in code


def test_a_kernel_without_a_session_gets_a_clear_error(monkeypatch):
    monkeypatch.delenv("IB_SERVICE_URL", raising=False)
    monkeypatch.delenv("IB_SESSION_TOKEN", raising=False)
    with pytest.raises(PanelError, match="IB_SERVICE_URL") as e:
        ChatPanel()
    assert e.value.code == "not_configured"


def test_settings_come_from_the_environment(fake_comms, monkeypatch):
    monkeypatch.setenv("IB_SERVICE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("IB_SESSION_TOKEN", SECRET)
    panel = ChatPanel()
    assert panel._url == "http://127.0.0.1:9"
    with pytest.raises(PanelError) as e:  # nothing listens there
        panel.ask("hello")
    assert e.value.code == "service_unreachable"
    panel.close()


# ---- against a live service ------------------------------------------------------------
@pytest.fixture
def panel(live, fake_comms):
    created = live.create_session()
    p = ChatPanel(service_url=live.url, session_token=created["candidate_token"])
    p.session_id = created["id"]
    yield p
    p.close()


def test_ask_returns_the_reply_and_the_history_has_both_sides(panel):
    assert panel.ask("What is it? [[reply:Forty-two.]]") == "Forty-two."
    history = panel.history
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "What is it? [[reply:Forty-two.]]"), ("assistant", "Forty-two.")]
    state = panel.state
    assert state["status"] == "active"
    assert state["tokens_used"] == history[0]["prompt_tokens"] + history[1]["completion_tokens"]


def test_ask_sends_the_conversation_so_far(panel):
    panel.ask("first [[reply:" + "long answer " * 20 + "]]")
    panel.ask("second [[reply:ok]]")
    first, reply, second, _ = panel.history
    # The second prompt holds the first exchange, so it is larger by at least the reply.
    assert second["prompt_tokens"] >= first["prompt_tokens"] + reply["completion_tokens"]


@pytest.mark.parametrize("action, key", [("pause", "paused"), ("lock", "locked"), ("end", "completed")])
def test_refusals_carry_the_sentence_the_panel_shows(live, panel, action, key):
    panel.ask("hi [[reply:hello]]")  # starts the session
    live.client.action(panel.session_id, action)
    with pytest.raises(PanelError) as e:
        panel.ask("again")
    # What the panel shows is word for word the refusal, as the service publishes it.
    published = live.client.session(panel.session_id)["blocked"]
    assert e.value.message == published["message"]
    assert view.blocked(panel.state) == (published["code"], published["message"])
    assert view.status_key(panel.state) == key


def test_summary_and_repr_describe_the_live_state(live, panel):
    live.client.action(panel.session_id, "start")
    paused = live.client.action(panel.session_id, "pause")
    assert panel.summary() == view.summary(panel.state, panel.history)
    assert paused["blocked"]["message"] in repr(panel)


def test_submit_sends_the_saved_notebook_and_ends_the_session(live, panel, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('done')")])
    path = tmp_path / "answer.ipynb"
    nbformat.write(nb, path)
    state = panel.submit(str(path))
    assert (state["status"], state["end_reason"]) == ("completed", "submitted")
    events = live.client.events(panel.session_id, "session.submitted")["events"]
    assert len(events) == 1
    with pytest.raises(ValueError, match="no saved notebook"):
        panel.submit(str(tmp_path / "missing.ipynb"))
