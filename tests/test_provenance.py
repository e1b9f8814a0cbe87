"""provenance: AI code in the final notebook, decided by content."""

import pytest
from session_records import (
    COPIED_BLOCK,
    HANDWRITTEN,
    MODIFIED_BLOCK_AI,
    MODIFIED_BLOCK_CANDIDATE,
    RecordBuilder,
    code_cell,
    fenced,
    markdown_cell,
    notebook,
    sample_record,
)

from ib_extension.review.provenance import code_blocks, normalise, provenance


def lines(code: str) -> int:
    return len(normalise(code))


def test_code_blocks_follow_commonmark_fences():
    text = "\n".join(
        [
            "intro",
            "```python",
            "a = 1",
            "```",
            "text",
            "~~~",
            "b = 2",
            "~~~",
            "text",
            "````md",
            "```python",
            "nested = True",
            "```",
            "````",
            "``` `not a fence` ```",
            "inline",
            "```",
            "cut = 'off mid-stream'",
        ]
    )
    assert code_blocks(text) == [
        "a = 1",
        "b = 2",
        "```python\nnested = True\n```",
        "cut = 'off mid-stream'",
    ]


def record_with(cells, *replies, challenge=None):
    b = RecordBuilder(challenge=challenge)
    b.start(0)
    for i, reply in enumerate(replies):
        b.ask(60 * (i + 1), f"question {i}", reply)
    b.submit(600, notebook(*cells))
    return b.build()


def test_copied_modified_and_handwritten_cells():
    record = record_with(
        [
            markdown_cell("notes"),
            code_cell(COPIED_BLOCK),
            code_cell(MODIFIED_BLOCK_CANDIDATE),
            code_cell(HANDWRITTEN),
        ],
        "Try this:\n" + fenced(COPIED_BLOCK),
        "Validation:\n" + fenced(MODIFIED_BLOCK_AI),
    )
    reply_ids = [m["id"] for m in record["messages"] if m["role"] == "assistant"]
    result = provenance(record)
    copied, modified, written = result["cells"]
    assert [c["index"] for c in result["cells"]] == [1, 2, 3]

    assert copied["ai_unchanged"] == copied["lines"] == lines(COPIED_BLOCK)
    assert (copied["similarity"], copied["best_message_id"]) == (1.0, reply_ids[0])

    # The candidate changed two of the AI's lines and added one.
    ai, mine = normalise(MODIFIED_BLOCK_AI), normalise(MODIFIED_BLOCK_CANDIDATE)
    changed = sum(a != b for a, b in zip(ai, mine, strict=False))
    added = lines(MODIFIED_BLOCK_CANDIDATE) - lines(MODIFIED_BLOCK_AI)
    assert (changed, added) == (2, 1)
    assert modified["ai_modified"] == changed
    assert modified["candidate"] == added
    assert modified["ai_unchanged"] == lines(MODIFIED_BLOCK_AI) - changed
    assert modified["best_message_id"] == reply_ids[1]
    assert 0 < modified["similarity"] < 1

    assert written["candidate"] == written["lines"] == lines(HANDWRITTEN)
    assert (written["best_message_id"], written["similarity"], written["sources"]) == (
        None,
        0.0,
        [],
    )

    from_ai = sum(c["ai_unchanged"] + c["ai_modified"] for c in result["cells"])
    total = sum(c["lines"] for c in result["cells"])
    assert result["ai_share"] == round(from_ai / total, 4)
    assert result["messages_used"] == reply_ids


def test_cell_built_from_two_replies_credits_both():
    first = "import heapq\nheap = []\nheapq.heappush(heap, 3)"
    second = "smallest = heapq.heappop(heap)\nprint(smallest)"
    record = record_with([code_cell(first + "\n\n" + second)], fenced(first), fenced(second))
    cell = provenance(record)["cells"][0]
    assert cell["ai_unchanged"] == cell["lines"] == lines(first) + lines(second)
    assert cell["sources"] == [m["id"] for m in record["messages"] if m["role"] == "assistant"]


def test_replies_used_are_listed_in_time_order_whatever_their_ids():
    record = record_with(
        [code_cell("b = 2\nc = 3\na = 1\nz = 0")], fenced("a = 1\nz = 0"), fenced("b = 2\nc = 3")
    )
    first, second = (m for m in record["messages"] if m["role"] == "assistant")
    first["id"], second["id"] = "m_zz", "m_aa"
    assert provenance(record)["messages_used"] == ["m_zz", "m_aa"]


def test_starter_code_and_code_the_candidate_sent_are_not_the_ais():
    mine = "def helper(x):\n    return x * 2"
    b = RecordBuilder(challenge={"id": "c", "title": "Solve", "statement": "Solve it.",
                                 "starter_code": "def solve(nums):\n    pass"})
    b.start(0)
    # The AI echoes the candidate's helper and the starter line, and adds one line.
    b.ask(
        10,
        "Why is this slow?\n" + fenced(mine),
        fenced("def solve(nums):\n" + mine + "\n    print('fast')"),
    )
    b.submit(100, notebook(code_cell("def solve(nums):\n" + mine + "\n    print('fast')")))
    cell = provenance(b.build())["cells"][0]
    assert (cell["ai_unchanged"], cell["candidate"]) == (1, 1 + lines(mine))


def test_one_shared_trivial_line_is_not_provenance():
    record = record_with(
        [code_cell("x = load()\nreturn x\nprint(done)")], fenced("y = compute()\nreturn x\nz = 3")
    )
    cell = provenance(record)["cells"][0]
    assert cell["ai_unchanged"] == 0 and cell["sources"] == []
    assert cell["best_message_id"] is not None  # the closest block is still named


def test_whitespace_and_blank_lines_do_not_count():
    record = record_with(
        [code_cell("for i in range(3):\n\n        print( i )\n")],
        fenced("for i in range(3):\n    print( i )"),
    )
    cell = provenance(record)["cells"][0]
    assert (cell["lines"], cell["ai_unchanged"]) == (2, 2)


def test_notebook_from_the_last_snapshot_when_nothing_was_submitted():
    b = RecordBuilder(challenge=None)
    b.start(0)
    b.ask(10, "q", fenced(COPIED_BLOCK))
    b.activity(20, "snapshot", notebook=notebook(code_cell("old = 1")))
    b.activity(30, "snapshot", notebook=notebook(code_cell(COPIED_BLOCK)))
    result = provenance(b.build())
    assert result["has_notebook"] and result["ai_share"] == 1.0


def test_no_notebook_means_no_cells():
    result = provenance(RecordBuilder().build())
    assert (result["has_notebook"], result["cells"], result["ai_share"]) == (False, [], None)


def test_source_as_list_of_lines_is_read():
    record = sample_record()
    cell = record["final_notebook"]["cells"][1]
    cell["source"] = cell["source"].splitlines(keepends=True)
    as_text = provenance(sample_record())["cells"][0]
    as_lines = provenance(record)["cells"][0]
    assert {**as_lines, "cell_id": None} == {**as_text, "cell_id": None}


def test_bad_record_is_named():
    with pytest.raises(ValueError, match="needs 'session'"):
        provenance({"messages": []})
