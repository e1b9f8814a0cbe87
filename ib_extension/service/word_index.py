"""History search's index: for each word in the conversations, the sessions that use it.

A query matches a session when every word of the query starts a word of its conversation
(case-insensitive), so "prior queue" finds "a priority queue". Words are runs of ASCII
letters, digits and underscores: the same runs as RE2's `\\b` and `WORD_SQL`, so the index,
its fill from the file and the scan that answers until the fill is done all agree.

The index lives in memory (a search is a few set operations, not a scan of every message)
and follows the messages as they are saved. At start-up it is filled from the file on a
thread of its own: DuckDB does the tokenizing, without holding the GIL. The file's part is
kept as arrays of session numbers: 4 bytes a (word, session) pair.
"""

from __future__ import annotations

import re
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable

WORD = re.compile(r"[A-Za-z0-9_]+")
WORD_SQL = "[A-Za-z0-9_]+"
# New words wait in a short sorted list; past this many they are merged into the long one.
MERGE_AT = 4096


def words(text: str) -> set[str]:
    return {w.lower() for w in set(WORD.findall(text))}


class WordIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # the fill runs on a thread of its own
        self._ids: list[str] = []  # session number -> id
        self._number: dict[str, int] = {}
        self._filled: dict[str, array] = {}  # word -> numbers of its sessions, from the file
        self._added: dict[str, set[int]] = {}  # word -> numbers, from messages saved since
        self._sorted: list[str] = []  # every word, for prefix ranges...
        self._new: list[str] = []  # ...but those first seen since the last merge
        self.ready = False  # filled from the file

    def _numbered(self, session_id: str) -> int:
        n = self._number.get(session_id)
        if n is None:
            n = self._number[session_id] = len(self._ids)
            self._ids.append(session_id)
        return n

    def add(self, session_id: str, text: str) -> None:
        found = words(text)
        if not found:
            return
        with self._lock:
            n = self._numbered(session_id)
            for word in found:
                numbers = self._added.get(word)
                if numbers is not None:
                    numbers.add(n)
                    continue
                self._added[word] = {n}
                if word not in self._filled:
                    self._new.insert(bisect_left(self._new, word), word)
            self._merge_if_long()

    def _merge_if_long(self) -> None:
        if len(self._new) > MERGE_AT:
            self._sorted = sorted(self._sorted + self._new)  # two sorted runs: linear
            self._new = []

    def fill(self, chunks: Iterable[list[tuple[str, list[str]]]]) -> None:
        """Chunks of (word, session ids) from the file. Messages added meanwhile stay."""
        filled: dict[str, array] = {}
        for chunk in chunks:
            with self._lock:  # numbering is shared with add
                number = self._numbered
                numbered = [(word, array("I", map(number, ids))) for word, ids in chunk]
            filled.update(numbered)
        ordered = sorted(filled)
        with self._lock:
            self._filled, self._sorted = filled, ordered
            self._new = sorted(w for w in self._added if w not in filled)
            self._merge_if_long()
            self.ready = True

    def match(self, terms: list[str]) -> set[str]:
        """Sessions where every term starts a word (terms as `words` gives them)."""
        found: set[int] | None = None
        with self._lock:
            for term in sorted(terms, key=len, reverse=True):  # longer words: fewer sessions
                numbers: set[int] = set()
                for vocabulary in (self._sorted, self._new):
                    i = bisect_left(vocabulary, term)
                    while i < len(vocabulary) and vocabulary[i].startswith(term):
                        numbers.update(self._filled.get(vocabulary[i], ()))
                        numbers.update(self._added.get(vocabulary[i], ()))
                        i += 1
                found = numbers if found is None else found & numbers
                if not found:
                    return set()
            return {self._ids[n] for n in found or ()}
