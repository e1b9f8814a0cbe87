"""The write-behind journal: rows acknowledged before DuckDB has them, kept safe on disk.

A DuckDB commit costs milliseconds of CPU, most of it per statement; a line appended to
a file costs microseconds. So every row the service writes is first appended here (one
`write(2)`, which a killed process cannot take back: the kernel has it), and the store
moves the rows into DuckDB in batches. Each batch closes the current segment and starts
a new one; once the batch is committed, its segment is deleted. At start-up the rows of
any segment still present (the process died before committing them) are written again:
every row is keyed, so writing one twice changes nothing.

A segment is one file per table, `<number>.<table>.jsonl`, one JSON object per row: the
table's columns and `_n`, the row's place in the journal (the latest row of a key wins).
DuckDB reads that form itself (read_json), so a batch moves in without Python converting
its values one by one, which for big batches cost six times the CPU and held the GIL.

What a power cut (not a killed process) may lose: the rows appended since the last
DuckDB commit, a fraction of a second, because segments are not fsync'ed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..api import fast_json

log = logging.getLogger("ib_extension.service.journal")

Row = tuple[str, dict[str, Any]]  # (table, {column: value}, JSON columns encoded)
ORDER = "_n"  # the key of a row's place in the journal


class Journal:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._number = max(self.segments(), default=0)
        self._fds: dict[str, int] | None = None
        self._n = 0

    def segments(self) -> list[int]:
        """The numbers of the segments on disk, oldest first."""
        return sorted({int(p.name.split(".")[0]) for p in self.directory.glob("*.jsonl")
                       if p.name.split(".")[0].isdigit()})

    def files(self, number: int) -> dict[str, Path]:
        """The files of segment `number`: table -> path."""
        return {p.name.split(".")[1]: p
                for p in sorted(self.directory.glob(f"{number:012d}.*.jsonl"))}

    def rows(self, number: int) -> Iterator[Row]:
        """The rows of segment `number`, each table's in the order they were appended."""
        for table, path in self.files(number).items():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except ValueError:  # the last line of a killed write: never acknowledged
                        log.warning("journal %s ends in a partial line; skipped", path.name)
                        continue
                    row.pop(ORDER, None)
                    yield table, row

    def open(self) -> None:
        """Start a new segment: appends go there until the next `rotate`."""
        self._number += 1
        self._fds = {}

    def append(self, table: str, row: dict[str, Any]) -> None:
        assert self._fds is not None, "journal is not open"
        fd = self._fds.get(table)
        if fd is None:
            path = self.directory / f"{self._number:012d}.{table}.jsonl"
            fd = self._fds[table] = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._n += 1
        # The row's object with its place added last, without copying the row.
        os.write(fd, fast_json.dumps(row)[:-1] + f',"{ORDER}":{self._n}}}\n'.encode())

    def rotate(self) -> int:
        """Close the current segment and open the next; returns the closed one's number."""
        closed = self._number
        self.close()
        self.open()
        return closed

    def forget(self, number: int) -> None:
        """The segment's rows are committed: delete it."""
        for path in self.files(number).values():
            path.unlink(missing_ok=True)

    def close(self) -> None:
        for fd in (self._fds or {}).values():
            os.close(fd)
        self._fds = None
