"""The service in a real Jupyter server: health, OpenAPI, create, chat via the openai SDK."""

import ctypes
import gc
import io
import logging
import platform
import resource

import pytest
from helpers import candidate_client

from ib_extension.service import memory
from ib_extension.service.app import drop_records_no_handler_takes


async def test_health_is_public_and_says_nothing_secret(jp_fetch):
    r = await jp_fetch("ib", "api", "health", headers={})
    assert r.code == 200


async def test_chat_roundtrip_with_openai_sdk(make_session, base_url, aio_interviewer):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "How do I reverse a list?"}])
    assert "demo" in reply.choices[0].message.content.lower()
    s = (await aio_interviewer.get(f"/ib/api/sessions/{created['id']}")).json()
    assert s["tokens_used"] == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert s["status"] == "active"


@pytest.fixture
def gc_freeze_on(ib_config):
    ib_config["gc_freeze"] = True  # before the server starts (the suite runs with it off)


@pytest.fixture
def keep_freed_memory_on(ib_config):
    ib_config["keep_freed_memory"] = True


async def test_the_started_service_sets_its_heap_aside_from_the_collector_until_it_stops(
        gc_freeze_on, jp_serverapp, ib_app, make_session):
    assert gc.get_freeze_count() == 0
    # What ServerApp.start calls once the loop runs (pytest-jupyter's server never starts)
    await ib_app._start_jupyter_server_extension(jp_serverapp)
    assert gc.get_freeze_count() > 10_000  # the server, its extensions, their modules
    await make_session()  # and it serves
    await ib_app.stop_extension()
    assert gc.get_freeze_count() == 0


def page_faults_of(rounds: int) -> int:
    """Minor page faults of this thread over `rounds` of making four 12 MB blocks and
    freeing them, as big requests' bodies and JSON come and go."""
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(rounds):
        blocks = [bytearray(12 * 2**20) for _ in range(4)]
        del blocks
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's allocator")
async def test_the_started_service_reuses_freed_memory_without_page_faults(
        keep_freed_memory_on, jp_serverapp, ib_app):
    # glibc's starting lines (128 KB) set outright: what this process freed before cannot
    # have raised them. It then hands the blocks back and faults them in again: 3,072
    # pages each, every round.
    mallopt = ctypes.CDLL(None).mallopt
    mallopt(memory.M_MMAP_THRESHOLD, 128 * 1024)
    mallopt(memory.M_TRIM_THRESHOLD, 128 * 1024)
    page_faults_of(1)
    assert page_faults_of(3) > 3 * 4 * 3000
    await ib_app._start_jupyter_server_extension(jp_serverapp)  # keep_freed_memory is on
    page_faults_of(1)
    assert page_faults_of(3) < 20  # the freed blocks are used again
    await ib_app.stop_extension()


async def test_the_started_service_makes_no_log_record_its_servers_handlers_drop(
        jp_serverapp, ib_app):
    """traitlets keeps the server's logger at DEBUG and filters in its handlers: every
    answered request's debug line was made, then dropped."""
    log = jp_serverapp.log
    handler = logging.StreamHandler(io.StringIO())
    handler.setLevel(logging.INFO)
    saved = log.level, log.handlers[:], log.propagate
    log.handlers[:], log.propagate = [handler], False
    log.setLevel(logging.DEBUG)
    try:
        await ib_app._start_jupyter_server_extension(jp_serverapp)
        assert not log.isEnabledFor(logging.DEBUG)
        log.info("still said")
        assert "still said" in handler.stream.getvalue()

        debug_too = logging.StreamHandler(io.StringIO())  # a handler that takes debug lines
        log.addHandler(debug_too)
        log.setLevel(logging.DEBUG)
        drop_records_no_handler_takes(log)
        log.debug("kept for the handler that takes it")
        assert "kept for" in debug_too.stream.getvalue()
    finally:
        await ib_app.stop_extension()
        log.setLevel(saved[0])
        log.handlers[:], log.propagate = saved[1], saved[2]
