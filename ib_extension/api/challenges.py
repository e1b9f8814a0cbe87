"""The challenge library: one Markdown file per challenge, parsed into `Challenge`.

File format (documented for authors in challenges/README.md): YAML front matter
with the metadata, then `## ` sections. Statement and notes are Markdown; the
code sections each hold exactly one ```python fenced block. `dump_challenge`
writes the same format, so interviewer-made challenges can be stored as text
and parsed back unchanged.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CATEGORIES = (
    "algorithms",
    "data-structures",
    "data-wrangling",
    "debugging",
    "design",
    "sql",
    "testing",
    "text-processing",
)
DIFFICULTIES = ("easy", "medium", "hard")

# Section heading -> model field, in file order. Headings match case-insensitively.
SECTIONS = {
    "statement": "statement",
    "starter code": "starter_code",
    "visible tests": "visible_tests",
    "hidden tests": "hidden_tests",
    "reference solution": "reference_solution",
    "interviewer notes": "interviewer_notes",
}
CODE_FIELDS = ("starter_code", "visible_tests", "hidden_tests", "reference_solution")
MARKDOWN_FIELDS = ("statement", "interviewer_notes")
REQUIRED_SECTIONS = ("statement", "starter code", "visible tests")
FRONT_MATTER_KEYS = (
    "id",
    "title",
    "category",
    "difficulty",
    "tags",
    "suggested_minutes",
    "suggested_tokens",
)
PUBLIC_FIELDS = FRONT_MATTER_KEYS + ("statement", "starter_code", "visible_tests")

_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_CODE_BLOCK = re.compile(
    r"\A(?P<fence>`{3,})python[ \t]*\n(?P<code>.*?)^(?P=fence)[ \t]*\Z", re.S | re.M
)


class ChallengeError(ValueError):
    """A challenge that cannot be used: `source` names the file, `problem` says why."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


def find_test_names(code: str) -> list[str]:
    """Names of the top-level `test_*` functions in a block of test code."""
    try:
        tree = ast.parse(code)
    except SystemError:
        # CPython before 3.11.5 (gh-106905): a finalizer that the garbage collector runs
        # while the tree is built can trip a false "recursion depth mismatch"; the code
        # itself parsed, so parsing it again succeeds.
        tree = ast.parse(code)
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def _scan_markdown(text: str) -> tuple[list[tuple[str, bool]], int | None]:
    """Pair each line with whether it lies outside ``` / ~~~ fences; also return
    the index of the line opening a fence that is never closed, if any."""
    lines, fence, opened_at = [], None, None
    for index, line in enumerate(text.split("\n")):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence, opened_at = match.group(1), index
            lines.append((line, fence is None))
        else:
            closing = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
            if closing and not match.group(2).strip():
                fence = None
            lines.append((line, False))
    return lines, (opened_at if fence is not None else None)


class Challenge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)
    title: str = Field(min_length=1, max_length=120)
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    difficulty: Literal[DIFFICULTIES]  # type: ignore[valid-type]
    tags: list[str] = Field(default_factory=list, max_length=20)
    suggested_minutes: int = Field(ge=5, le=480)
    suggested_tokens: int = Field(ge=1000, le=2_000_000)
    statement: str
    starter_code: str = ""
    visible_tests: str
    hidden_tests: str = ""
    reference_solution: str = ""
    interviewer_notes: str = ""

    @field_validator("title")
    @classmethod
    def _strip_title(cls, value: str) -> str:
        value = value.strip()
        if not value or "\n" in value:
            raise ValueError("the title must be one non-empty line")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: list[str]) -> list[str]:
        tags = [tag.strip().lower() for tag in tags]
        for tag in tags:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+#.-]{0,39}", tag):
                raise ValueError(f"tag {tag!r} should be a short lowercase word like 'sorting'")
        return tags

    @field_validator(*MARKDOWN_FIELDS)
    @classmethod
    def _check_markdown(cls, text: str) -> str:
        # These rules keep the text from spilling into other sections of the file.
        text = text.strip()
        lines, unclosed = _scan_markdown(text)
        for line, outside in lines:
            if outside and line.startswith("## "):
                raise ValueError(
                    f"the heading {line!r} would start a new section; use ### for subheadings"
                )
        if unclosed is not None:
            raise ValueError("a ``` code fence is opened but never closed")
        return text

    @field_validator("statement")
    @classmethod
    def _has_statement(cls, text: str) -> str:
        if not text:
            raise ValueError("the statement is empty")
        return text

    @field_validator(*CODE_FIELDS)
    @classmethod
    def _check_code(cls, code: str) -> str:
        code = code.strip("\n").rstrip()
        if not code:
            return ""
        try:
            ast.parse(code)
        except SyntaxError as e:
            raise ValueError(f"the code does not parse: line {e.lineno}: {e.msg}") from None
        return code + "\n"

    @field_validator("visible_tests")
    @classmethod
    def _has_tests(cls, code: str) -> str:
        if not find_test_names(code):
            raise ValueError("define at least one top-level function named test_...")
        return code

    @model_validator(mode="after")
    def _unique_test_names(self) -> Challenge:
        # Visible and hidden tests run in one namespace, so a repeated name would hide a test.
        names = self.visible_test_names + self.hidden_test_names
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"test names must be unique across visible and hidden tests: {', '.join(repeated)}"
            )
        return self

    @property
    def visible_test_names(self) -> list[str]:
        return find_test_names(self.visible_tests)

    @property
    def hidden_test_names(self) -> list[str]:
        return find_test_names(self.hidden_tests)

    def public(self) -> dict:
        """What a candidate may see: no hidden tests, reference solution or notes."""
        return {name: getattr(self, name) for name in PUBLIC_FIELDS} | {"tags": list(self.tags)}

    def interviewer(self) -> dict:
        """Everything, with the test names spelled out (interviewers are trusted)."""
        return self.model_dump() | {
            "test_names": {"visible": self.visible_test_names, "hidden": self.hidden_test_names}
        }


def _sentence_from_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in item["loc"])
        if item["type"] == "missing":
            parts.append(f"'{where}' is missing")
        elif item["type"] == "extra_forbidden":
            parts.append(f"'{where}' is not a known field")
        elif where:
            parts.append(f"'{where}': {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


def _split_front_matter(text: str, source: str) -> tuple[dict, str, int]:
    """The metadata, the body after it, and the body's first line number."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != "---":
        raise ChallengeError(
            source, "the file must start with a '---' line opening the YAML front matter"
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ChallengeError(
            source, "the YAML front matter is never closed by a '---' line"
        ) from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as e:
        raise ChallengeError(
            source, f"the front matter is not valid YAML: {e}".replace("\n", " ")
        ) from None
    if not isinstance(meta, dict):
        raise ChallengeError(
            source, "the front matter must be a YAML mapping such as 'id: two-sum'"
        )
    unknown = sorted(set(meta) - set(FRONT_MATTER_KEYS))
    if unknown:
        raise ChallengeError(
            source,
            f"unknown front matter key {', '.join(map(repr, unknown))}; expected {', '.join(FRONT_MATTER_KEYS)}",
        )
    return meta, "\n".join(lines[end + 1 :]), end + 2


def _split_sections(body: str, first_line: int, source: str) -> dict[str, str]:
    lines, unclosed = _scan_markdown(body)
    if unclosed is not None:
        raise ChallengeError(
            source, f"the code fence on line {first_line + unclosed} is never closed"
        )
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line, outside in lines:
        if outside and line.startswith("## "):
            heading = line[3:].strip()
            key = heading.lower()
            if key not in SECTIONS:
                raise ChallengeError(
                    source,
                    f"unknown section '## {heading}'; expected "
                    + ", ".join(f"'## {name.capitalize()}'" for name in SECTIONS),
                )
            if key in sections:
                raise ChallengeError(source, f"the section '## {heading}' appears twice")
            current = sections[key] = []
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise ChallengeError(
                source, f"text before the first '## ' section: {line.strip()[:60]!r}"
            )
    missing = [name for name in REQUIRED_SECTIONS if name not in sections]
    if missing:
        raise ChallengeError(
            source, "missing section " + ", ".join(f"'## {m.capitalize()}'" for m in missing)
        )
    return {SECTIONS[key]: "\n".join(lines).strip() for key, lines in sections.items()}


def _code_from_section(text: str, heading: str, source: str) -> str:
    if not text:
        return ""
    match = _CODE_BLOCK.match(text)
    if not match:
        raise ChallengeError(
            source,
            f"the section '## {heading}' must hold one ```python fenced block and nothing else",
        )
    return match.group("code")


def challenge_from_fields(fields: dict, source: str = "<challenge>") -> Challenge:
    """A challenge from a dict of fields (an API body, say), with errors as ChallengeError."""
    try:
        return Challenge.model_validate(fields)
    except ValidationError as e:
        raise ChallengeError(source, _sentence_from_validation_error(e)) from None


def parse_challenge(text: str, source: str = "<challenge>") -> Challenge:
    """Parse one challenge file's text; `source` names it in error messages."""
    meta, body, first_line = _split_front_matter(text, source)
    fields = _split_sections(body, first_line, source)
    headings = {value: key.capitalize() for key, value in SECTIONS.items()}
    for name in CODE_FIELDS:
        if name in fields:
            fields[name] = _code_from_section(fields[name], headings[name], source)
    return challenge_from_fields(meta | fields, source)


def _fenced(code: str) -> str:
    longest = max((len(m) for m in re.findall(r"^`+", code, re.M)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{code}{fence}"


def dump_challenge(challenge: Challenge) -> str:
    """The challenge as file text; `parse_challenge(dump_challenge(c)) == c`."""
    meta = {key: getattr(challenge, key) for key in FRONT_MATTER_KEYS}
    front = yaml.safe_dump(
        meta, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000
    )
    parts = [f"---\n{front}---\n"]
    for heading, name in SECTIONS.items():
        value = getattr(challenge, name)
        if not value and heading not in REQUIRED_SECTIONS:
            continue
        content = _fenced(value) if name in CODE_FIELDS else value
        parts.append(f"## {heading.capitalize()}\n\n{content}\n")
    return "\n".join(parts)


@dataclass
class Library:
    """Challenges by id, plus the files that could not be loaded and why."""

    challenges: dict[str, Challenge] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.challenges)

    def __iter__(self) -> Iterator[Challenge]:
        return iter(self.challenges.values())

    def __contains__(self, challenge_id: object) -> bool:
        return challenge_id in self.challenges

    def get(self, challenge_id: str) -> Challenge | None:
        return self.challenges.get(challenge_id)

    def add(self, challenge: Challenge, source: str = "<added>", *, replace: bool = False) -> None:
        """Add a challenge; an id already in use is refused unless `replace`."""
        if challenge.id in self.challenges and not replace:
            raise ChallengeError(
                source, f"the id '{challenge.id}' is already used by {self.sources[challenge.id]}"
            )
        self.challenges[challenge.id] = challenge
        self.sources[challenge.id] = source

    def search(
        self,
        q: str | None = None,
        category: str | None = None,
        difficulty: str | None = None,
        tag: str | None = None,
    ) -> list[Challenge]:
        """Challenges matching every given filter; each word of `q` must appear in
        the id, title, statement or tags (case-insensitive)."""
        if category is not None and category not in CATEGORIES:
            raise ValueError(
                f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
            )
        if difficulty is not None and difficulty not in DIFFICULTIES:
            raise ValueError(f"unknown difficulty {difficulty!r}; expected easy, medium or hard")
        words = (q or "").lower().split()
        found = []
        for challenge in self:
            haystack = " ".join(
                [challenge.id, challenge.title, challenge.statement, *challenge.tags]
            ).lower()
            if (
                all(word in haystack for word in words)
                and category in (None, challenge.category)
                and difficulty in (None, challenge.difficulty)
                and (tag is None or tag.lower() in challenge.tags)
            ):
                found.append(challenge)
        return found


def load_library(dirs: Iterable[str | Path]) -> Library:
    """Load every `*.md` challenge file (README.md excepted) from `dirs`, in name order.

    A broken file, or one repeating an id, lands in `library.errors`; the rest load."""
    library = Library()
    for folder in map(Path, dirs):
        if not folder.is_dir():
            library.errors.append((str(folder), "the challenge folder does not exist"))
            continue
        for path in sorted(folder.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            try:
                challenge = parse_challenge(path.read_text(encoding="utf-8"), str(path))
                library.add(challenge, str(path))
            except (ChallengeError, UnicodeDecodeError, OSError) as e:
                library.errors.append((str(path), getattr(e, "problem", str(e))))
    return library


def default_dirs() -> list[Path]:
    """The repo's challenges/ when running from a source checkout, else none.

    The library is never installed with the package: its files hold the answer key, and
    a candidate's environment installs the package too. A service installed from a wheel
    names its library with IBExtension.challenge_dirs."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "challenges").is_dir():
        return [checkout / "challenges"]
    return []
