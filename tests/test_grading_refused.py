"""Where graded code cannot be isolated, the service refuses to grade and says why."""

import asyncio
import shutil

import httpx
import nbformat
import pytest

from ib_extension.grading.sandbox import prepare


@pytest.fixture
def ib_config(ib_config, monkeypatch, tmp_path):
    """The service starts on a machine without bubblewrap (every other tool is there)."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    for tool in ("setpriv", "useradd", "python3"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    prepare.cache_clear()
    yield ib_config
    prepare.cache_clear()


async def test_grading_is_refused_with_a_grade_skipped_event_where_no_sandbox_exists(
        make_session, base_url, service, aio_interviewer):
    ch = service.challenges.get("merge-intervals")
    created = await make_session(challenge_text=None, challenge_title=None, challenge_id=ch.id)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ch.reference_solution)])
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        r = await c.post("/ib/api/me/submit", json={"notebook": nb},
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    assert r.status_code == 200, r.text
    await asyncio.gather(*service._background)
    events = (await aio_interviewer.get(
        f"/ib/api/sessions/{created['id']}/events?type=grade.*")).json()["events"]
    assert [e["type"] for e in events] == ["grade.skipped"]
    assert events[0]["payload"]["reason"] == (
        "graded code cannot be isolated here: bubblewrap is not installed (`apt-get install "
        "bubblewrap`, or `make sandbox`); graded code would run unisolated.")
    s = (await aio_interviewer.get(f"/ib/api/sessions/{created['id']}")).json()
    assert s["grade"] is None and s["status"] == "completed"
    again = await aio_interviewer.post(f"/ib/api/sessions/{created['id']}/grade")
    assert again.status_code == 409
