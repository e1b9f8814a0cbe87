"""The challenge library on the service, and grading of a submitted notebook."""

import asyncio

import httpx
import nbformat
import pytest

from ib_extension.api.challenges import dump_challenge


def notebook_with(code: str) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("My solution"), nbformat.v4.new_code_cell(code)]
    return nb


async def test_list_search_and_get(aio_interviewer, service):
    everything = (await aio_interviewer.get("/ib/api/challenges")).json()
    assert len(everything["challenges"]) == len(service.challenges) >= 10
    public = everything["challenges"][0]
    assert "hidden_tests" not in public and "reference_solution" not in public
    easy = (await aio_interviewer.get("/ib/api/challenges?difficulty=easy")).json()["challenges"]
    assert easy and all(c["difficulty"] == "easy" for c in easy)
    sql = (await aio_interviewer.get("/ib/api/challenges?category=sql")).json()["challenges"]
    assert sql and all(c["category"] == "sql" for c in sql)
    one = (await aio_interviewer.get(f"/ib/api/challenges/{public['id']}")).json()
    assert one["hidden_tests"] == service.challenges.get(public["id"]).hidden_tests
    bad = await aio_interviewer.get("/ib/api/challenges?difficulty=impossible")
    assert bad.status_code == 400 and "difficulty" in bad.json()["error"]["message"]


async def test_interviewer_made_challenge_is_kept(aio_interviewer, service):
    base = next(iter(service.challenges))
    text = dump_challenge(base.model_copy(update={"id": "my-own", "title": "My own"}))
    r = await aio_interviewer.post("/ib/api/challenges", json={"source": text})
    assert r.status_code == 201, r.text
    assert service.challenges.get("my-own").title == "My own"
    rows = await service.store.run(service.store.challenges)
    assert ("my-own", text) in [(i, s) for i, s in rows]
    again = await aio_interviewer.post("/ib/api/challenges", json={"source": text})
    assert again.status_code == 400 and "already used" in again.json()["error"]["message"]
    broken = await aio_interviewer.post("/ib/api/challenges", json={"title": "No id"})
    assert broken.status_code == 400


async def test_session_from_library_hides_the_hidden_parts(make_session, base_url, service):
    ch = next(iter(service.challenges))
    created = await make_session(challenge_text=None, challenge_title=None, challenge_id=ch.id)
    async with httpx.AsyncClient(base_url=base_url) as c:
        me = (await c.get("/ib/api/me",
                          headers={"Authorization": f"Bearer {created['candidate_token']}"})).json()
    assert me["challenge"]["id"] == ch.id and me["challenge"]["statement"] == ch.statement
    for secret in (ch.hidden_tests, ch.reference_solution, ch.interviewer_notes):
        if secret.strip():
            assert secret not in str(me)


@pytest.mark.parametrize("solution,perfect", [("reference", True), ("starter", False)])
async def test_submission_is_graded(make_session, base_url, service, aio_interviewer,
                                    solution, perfect):
    ch = service.challenges.get("merge-intervals") or next(iter(service.challenges))
    created = await make_session(challenge_text=None, challenge_title=None, challenge_id=ch.id)
    code = ch.reference_solution if solution == "reference" else ch.starter_code
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        r = await c.post("/ib/api/me/submit", json={"notebook": notebook_with(code)},
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    await asyncio.gather(*service._background)
    s = (await aio_interviewer.get(f"/ib/api/sessions/{created['id']}")).json()
    assert s["grade"]["total"] > 0
    assert (s["score"] == 1.0) is perfect
    events = (await aio_interviewer.get(f"/ib/api/sessions/{created['id']}/events?type=grade.*")).json()
    assert [e["type"] for e in events["events"]] == ["grade.completed"]
