"""The write-behind journal: rows acknowledged before DuckDB has them, kept safe on disk.

A DuckDB commit costs milliseconds of CPU, most of it per statement; a line appended to
a file costs microseconds. So every row the service writes is first appended here (one
`write(2)`, which a killed process cannot take back: the kernel has it), and the store
moves the rows into DuckDB in batches. Each batch closes the current segment and starts
a new one; once the batch is committed, its segment is deleted. At start-up the rows of
any segment still present (the process died before committing them) are written again:
every row is keyed, so writing one twice changes nothing.

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

log = logging.getLogger("ib_extension.service.journal")

Row = tuple[str, list[Any]]  # (table, column values in the table's order, JSON encoded)


class Journal:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._number = max(self._segments(), default=0)
        self._fd: int | None = None

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.jsonl") if p.stem.isdigit())

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.jsonl"

    def leftovers(self) -> Iterator[Row]:
        """Rows of the segments a previous process left (call before `open`)."""
        for number in self._segments():
            with open(self._path(number), encoding="utf-8") as f:
                for line in f:
                    try:
                        table, values = json.loads(line)
                    except ValueError:  # the last line of a killed write: never acknowledged
                        log.warning("journal %d ends in a partial line; skipped", number)
                        continue
                    yield table, values

    def drop_leftovers(self) -> None:
        for number in self._segments():
            self._path(number).unlink()

    def open(self) -> None:
        """Start a new segment: appends go there until the next `rotate`."""
        self._number += 1
        self._fd = os.open(self._path(self._number),
                           os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def append(self, table: str, values: list[Any]) -> None:
        assert self._fd is not None, "journal is not open"
        os.write(self._fd, (json.dumps([table, values]) + "\n").encode())

    def rotate(self) -> int:
        """Close the current segment and open the next; returns the closed one's number."""
        closed = self._number
        self.close()
        self.open()
        return closed

    def forget(self, number: int) -> None:
        """The closed segment's rows are committed: delete it."""
        self._path(number).unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
