"""The challenge library: every shipped file loads, every reference solution
passes its tests and every starter fails one; parsing errors name the file."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ib_extension.api.challenges import (
    CATEGORIES,
    Challenge,
    ChallengeError,
    challenge_from_fields,
    default_dirs,
    dump_challenge,
    load_library,
    parse_challenge,
)
from ib_extension.grading.kernel import run_tests

CHALLENGE_DIR = Path(__file__).resolve().parent.parent / "challenges"
LIBRARY = load_library([CHALLENGE_DIR])


def run_against(code: str, challenge: Challenge) -> list[dict]:
    """Run the challenge's visible and hidden tests in-process against `code`."""
    namespace: dict = {"__name__": "__candidate__"}
    exec(compile(code, f"<{challenge.id}>", "exec"), namespace)
    groups = [
        ("<visible tests>", challenge.visible_tests, True),
        ("<hidden tests>", challenge.hidden_tests, False),
    ]
    return list(run_tests(namespace, groups, timeout_seconds=10))


def test_default_dirs_finds_the_source_checkout():
    assert default_dirs() == [CHALLENGE_DIR]


def test_every_challenge_file_loads():
    assert LIBRARY.errors == []
    files = sorted(p for p in CHALLENGE_DIR.glob("*.md") if p.name != "README.md")
    assert len(LIBRARY) == len(files) >= 10
    for path in files:
        assert path.stem in LIBRARY, f"{path.name}: the file name should be the challenge id"


def test_library_is_varied():
    challenges = list(LIBRARY)
    assert {c.category for c in challenges} >= {
        "algorithms",
        "data-wrangling",
        "debugging",
        "design",
        "sql",
    }
    assert {c.difficulty for c in challenges} == {"easy", "medium", "hard"}
    assert all(c.hidden_tests and c.reference_solution and c.interviewer_notes for c in challenges)


@pytest.mark.parametrize("challenge", list(LIBRARY), ids=lambda c: c.id)
def test_reference_passes_every_test(challenge):
    results = run_against(challenge.reference_solution, challenge)
    assert len(results) == len(challenge.visible_test_names) + len(challenge.hidden_test_names)
    assert [r for r in results if not r["passed"]] == []


@pytest.mark.parametrize("challenge", list(LIBRARY), ids=lambda c: c.id)
def test_starter_fails_a_test(challenge):
    results = run_against(challenge.starter_code, challenge)
    failed = [r for r in results if not r["passed"]]
    assert failed, "the starter code should not already pass"
    assert all(r["message"] for r in failed)


@pytest.mark.parametrize("challenge", list(LIBRARY), ids=lambda c: c.id)
def test_dump_and_parse_round_trip(challenge):
    assert parse_challenge(dump_challenge(challenge), "dumped") == challenge


def test_public_view_hides_answers_and_notes():
    challenge = LIBRARY.get("merge-intervals")
    public = challenge.public()
    assert public["visible_tests"] == challenge.visible_tests
    assert public["starter_code"] == challenge.starter_code
    for secret in ("hidden_tests", "reference_solution", "interviewer_notes"):
        assert secret not in public
    text = repr(public)
    assert challenge.hidden_test_names[0] not in text
    assert challenge.interviewer_notes not in text


def test_interviewer_view_lists_test_names():
    challenge = LIBRARY.get("merge-intervals")
    view = challenge.interviewer()
    assert view["hidden_tests"] == challenge.hidden_tests
    assert view["test_names"]["hidden"] == challenge.hidden_test_names


# --- search -----------------------------------------------------------------


def test_search_by_text_is_case_insensitive_and_matches_every_word():
    found = LIBRARY.search(q="MERGE intervals")
    assert [c.id for c in found] == ["merge-intervals"]
    assert LIBRARY.search(q="merge zebra") == []


def test_search_filters_combine():
    for category in CATEGORIES:
        for difficulty in ("easy", "medium", "hard"):
            expected = [c for c in LIBRARY if (c.category, c.difficulty) == (category, difficulty)]
            assert LIBRARY.search(category=category, difficulty=difficulty) == expected
    sql = LIBRARY.search(category="sql")
    assert sql and all(c.category == "sql" for c in sql)


def test_search_by_tag():
    tag = LIBRARY.get("merge-intervals").tags[0]
    found = LIBRARY.search(tag=tag.upper())
    assert LIBRARY.get("merge-intervals") in found
    assert all(tag in c.tags for c in found)


def test_search_rejects_unknown_filter_values():
    with pytest.raises(ValueError, match="unknown difficulty 'expert'"):
        LIBRARY.search(difficulty="expert")
    with pytest.raises(ValueError, match="unknown category 'cooking'"):
        LIBRARY.search(category="cooking")


# --- loading and errors -------------------------------------------------------


def write_library(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


GOOD = (CHALLENGE_DIR / "merge-intervals.md").read_text()


def test_broken_file_is_reported_and_the_rest_load(tmp_path):
    broken = GOOD.replace("difficulty: easy", "difficulty: impossible").replace(
        "id: merge-intervals", "id: broken"
    )
    folder = write_library(tmp_path / "lib", {"a-good.md": GOOD, "b-broken.md": broken})
    library = load_library([folder])
    assert [c.id for c in library] == ["merge-intervals"]
    [(source, problem)] = library.errors
    assert source.endswith("b-broken.md")
    assert "difficulty" in problem and "'easy', 'medium' or 'hard'" in problem


def test_duplicate_id_is_an_error_for_the_second_file(tmp_path):
    folder = write_library(tmp_path / "lib", {"first.md": GOOD, "second.md": GOOD})
    library = load_library([folder])
    assert library.sources["merge-intervals"].endswith("first.md")
    [(source, problem)] = library.errors
    assert source.endswith("second.md")
    assert "already used by" in problem and "first.md" in problem


def test_missing_folder_is_reported(tmp_path):
    library = load_library([tmp_path / "nowhere"])
    assert len(library) == 0
    assert library.errors == [(str(tmp_path / "nowhere"), "the challenge folder does not exist")]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: t.replace("---\n", "", 1), "must start with a '---' line"),
        (lambda t: t.replace("tags:", "tags: [\n"), "not valid YAML"),
        (lambda t: t.replace("tags:", "colour: blue\ntags:"), "unknown front matter key 'colour'"),
        (lambda t: t.replace("suggested_minutes: 20\n", ""), "'suggested_minutes' is missing"),
        (lambda t: t.replace("## Starter code", "## Starter"), "unknown section '## Starter'"),
        (lambda t: t.replace("## Visible tests", "## Hidden tests", 1), "appears twice"),
        (lambda t: t.replace("```python\ndef merge", "```\ndef merge"), "must hold one ```python"),
        (lambda t: t.replace("```python\ndef merge", "def merge"), "is never closed"),
        (lambda t: t.replace("def test_empty", "def test_touching_intervals_merge"), "unique"),
        (lambda t: t.replace("    merged = []", "    merged = [", 1), "does not parse: line 3"),
    ],
)
def test_parse_errors_say_what_is_wrong(edit, problem):
    with pytest.raises(ChallengeError) as caught:
        parse_challenge(edit(GOOD), "challenges/example.md")
    assert caught.value.source == "challenges/example.md"
    assert problem in caught.value.problem
    assert str(caught.value).startswith("challenges/example.md: ")


def test_visible_tests_must_define_a_test():
    text = GOOD.replace("def test_", "def check_")
    with pytest.raises(ChallengeError, match="at least one top-level function named test_"):
        parse_challenge(text, "x.md")


# --- interviewer-made challenges ----------------------------------------------


def make_challenge(**changes) -> Challenge:
    fields = dict(
        id="count-vowels",
        title="Count vowels",
        category="text-processing",
        difficulty="easy",
        tags=["strings"],
        suggested_minutes=10,
        suggested_tokens=5000,
        statement="Write `count_vowels(s)`.\n\n### Example\n\n```\n## not a heading inside a fence\n```",
        starter_code="def count_vowels(s):\n    ...",
        visible_tests="def test_basic():\n    assert count_vowels('banana') == 3",
    )
    return Challenge(**(fields | changes))


def test_added_challenge_round_trips_and_is_searchable():
    library = load_library([CHALLENGE_DIR])
    challenge = make_challenge(
        reference_solution="def count_vowels(s):\n    return sum(c in 'aeiou' for c in s)\n",
        starter_code="s = '''\n```\n'''\n",  # a fence inside the code needs a longer fence
    )
    library.add(challenge, "db:interviewer")
    assert library.get("count-vowels") is challenge
    assert library.search(q="vowels") == [challenge]
    assert parse_challenge(dump_challenge(challenge)) == challenge
    with pytest.raises(ChallengeError, match="already used by db:interviewer"):
        library.add(challenge)
    library.add(challenge.model_copy(update={"title": "Vowels"}), replace=True)
    assert library.get("count-vowels").title == "Vowels"


def test_statement_cannot_break_out_of_its_section():
    with pytest.raises(ValueError, match="would start a new section"):
        make_challenge(statement="Intro\n\n## Hidden tests\n")
    with pytest.raises(ValueError, match="never closed"):
        make_challenge(statement="Intro\n\n```python\nx = 1\n")


def test_windows_line_endings_parse_the_same():
    assert parse_challenge(GOOD.replace("\n", "\r\n")) == parse_challenge(GOOD)


# Lines built from the characters that matter to the format: fences, headings, YAML.
markdown_lines = st.one_of(
    st.sampled_from(["```", "````", "~~~", "```python", "## Hidden tests", "---", "### Example"]),
    st.text(alphabet="#`~- :ab\t", max_size=12),
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    statement=st.lists(markdown_lines, min_size=1, max_size=8).map("\n".join),
    code_line=st.text(alphabet="`~#ab =\"'", max_size=10),
    title=st.text(alphabet="ab :#-'\"[]{}&*!|>%@", min_size=1, max_size=20),
)
def test_any_valid_challenge_survives_dump_and_parse(statement, code_line, title):
    try:
        challenge = make_challenge(
            statement=statement,
            title=title,
            starter_code=f"s = {code_line!r}\n# {code_line}\n",
        )
    except ValueError:
        return  # not a valid challenge: nothing to round-trip
    assert parse_challenge(dump_challenge(challenge)) == challenge


def test_fields_from_an_api_body_get_the_same_sentences():
    body = make_challenge().model_dump() | {"difficulty": "extreme", "colour": "blue"}
    with pytest.raises(ChallengeError) as caught:
        challenge_from_fields(body, "the submitted challenge")
    assert caught.value.problem == (
        "'difficulty': Input should be 'easy', 'medium' or 'hard'; 'colour' is not a known field"
    )
