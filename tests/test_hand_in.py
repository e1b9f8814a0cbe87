"""The final notebook after an end: one service call (`Service.hand_in`) whoever brings it
(the candidate's server here; the hub's capture the same way), the first one within the
grace counts, grading waits for it when a workspace was opened, and the candidate's view
says what was handed in."""

import asyncio

import httpx
import nbformat
import pytest


def notebook(*sources: str) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Mine")]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    return nbformat.from_dict(nb)


@pytest.fixture
def candidate(base_url):
    def make(token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30)
    return make


async def test_a_hand_in_is_taken_only_after_the_end_and_only_once(make_session, candidate,
                                                                   aio_interviewer, service, clock):
    created = await make_session()
    sid = created["id"]
    async with candidate(created["candidate_token"]) as c:
        await c.post("/ib/api/me/opened")
        early = await c.post("/ib/api/me/hand-in", json={"notebook": notebook("x = 1")})
        assert early.status_code == 409 and "submit" in early.json()["error"]["message"]
        assert (await aio_interviewer.post(f"/ib/api/sessions/{sid}/end")).status_code == 200
        clock.advance(5)
        final = notebook("def f():\n    return 1", "", "f()")
        r = await c.post("/ib/api/me/hand-in",
                         json={"notebook": final, "path": "interview.ipynb"})
        assert r.status_code == 200, r.text
        handed = r.json()["handed_in"]
        assert (handed["by"], handed["path"], handed["code_cells"]) == (
            "workspace", "interview.ipynb", 2)
        again = await c.post("/ib/api/me/hand-in", json={"notebook": notebook("cheat = 1")})
        assert again.status_code == 409 and "already" in again.json()["error"]["message"]
    record = await service.record(sid)
    assert record.final_notebook["cells"][1]["source"] == "def f():\n    return 1"
    [event] = await service.events(sid, ["notebook.handed_in"])
    assert (event.actor, event.payload["seconds_after_end"]) == ("candidate", 5)
    # The interviewer's view says the same.
    view = (await aio_interviewer.get(f"/ib/api/sessions/{sid}")).json()
    assert view["handed_in"]["by"] == "workspace"


async def test_no_hand_in_after_a_submission_or_past_the_grace(make_session, candidate,
                                                               aio_interviewer, service, clock):
    submitted = await make_session()
    async with candidate(submitted["candidate_token"]) as c:
        r = await c.post("/ib/api/me/submit", json={"notebook": notebook("a = 1"),
                                                    "path": "interview.ipynb"})
        assert r.json()["handed_in"]["by"] == "submit"
        r = await c.post("/ib/api/me/hand-in", json={"notebook": notebook("b = 2")})
        assert r.status_code == 409
    late = await make_session()
    await aio_interviewer.post(f"/ib/api/sessions/{late['id']}/end")
    clock.advance(service.config.hand_in_grace_seconds + 1)
    async with candidate(late["candidate_token"]) as c:
        r = await c.post("/ib/api/me/hand-in", json={"notebook": notebook("b = 2")})
    assert r.status_code == 409 and "ago" in r.json()["error"]["message"]
    assert service.sessions[late["id"]].handed_in is None


async def test_grading_waits_for_the_workspaces_hand_in(make_session, candidate,
                                                        aio_interviewer, service):
    graded = []

    async def grader(nb, challenge):
        graded.append(nb)
        return {"score": 1.0, "passed": 1, "total": 1, "tests": []}

    service.grader = grader
    service.challenges.get = lambda _id: object()  # any challenge: this test is about timing
    created = await make_session()
    async with candidate(created["candidate_token"]) as c:
        await c.post("/ib/api/me/opened")
        await aio_interviewer.post(f"/ib/api/sessions/{created['id']}/end")
        for _ in range(5):  # the grading task runs, and waits
            await asyncio.sleep(0)
        assert graded == []
        await c.post("/ib/api/me/hand-in", json={"notebook": notebook("answer = 42")})
    await asyncio.gather(*service._background)
    assert [nb["cells"][1]["source"] for nb in graded] == ["answer = 42"]
