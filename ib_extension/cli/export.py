"""`ib export`: one session, or many, as reviewer files (ipynb, md, json, html, csv).

    ib export s_3k9x2m7q1p --format ipynb -o review.ipynb
    ib export --all --status completed --format html -o reviews/
    ib export s_3k9x2m7q1p --format html --without-answer-key   # to share

An export opens with the challenge. For interviewers (the default) that includes its
answer key, the hidden tests and interviewer notes (GET /ib/api/challenges/{id});
`--without-answer-key` leaves them out, for files that go to someone else.

Records come from the service (`GET /ib/api/sessions/{id}/record`) and are rendered by
`export.py`, which keeps only the fields an export may hold: no token of any kind.
The batch form lists the matching sessions first (server-side pages), then fetches and
writes one record at a time, so memory stays flat however many sessions there are.
"""

from __future__ import annotations

import gc
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

from ..api.client import IBClient, IBClientError
from ..lean_start import without_unused_format_checks
from ..review.formats import FORMATS, file_name

LIST_PAGE = 500  # the service's largest page
def add_export_parser(sub, client_args) -> None:
    p = sub.add_parser(
        "export", help="export sessions for reviewers (ipynb, md, json, html, csv)",
        description="Export one session to a file, or with --all every matching session "
                    "to a folder (one file each; csv also writes all-sessions.csv).")
    client_args(p)
    p.add_argument("session_id", nargs="?", help="the session to export (or use --all)")
    p.add_argument("--format", "-f", choices=FORMATS, default="ipynb",
                   help="file format (default: ipynb)")
    p.add_argument("-o", "--output",
                   help="file to write (one session; an existing folder takes "
                        "<id>.<format>) or folder (--all); default: the current folder")
    p.add_argument("--all", action="store_true", help="export every matching session")
    p.add_argument("--status", help="with --all: comma-separated statuses, e.g. completed")
    p.add_argument("--q", help="with --all: text in the candidate, challenge or conversation")
    p.add_argument("--without-answer-key", action="store_true",
                   help="leave out the challenge's hidden tests and interviewer notes (for "
                        "files shared beyond the interviewers)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    if args.all == bool(args.session_id):
        raise ValueError("Give one SESSION_ID, or --all for many sessions (not both).")
    if not args.all and (args.status or args.q):
        raise ValueError("--status and --q select sessions for --all; a single export "
                         "takes only SESSION_ID.")
    if not args.token:
        raise ValueError("No interviewer token: pass --token or set IB_TOKEN.")
    client = IBClient(args.url, args.token)
    try:
        keyed = not args.without_answer_key
        if args.all:
            return export_all(client, args.format, Path(args.output or "."),
                              status=args.status, q=args.q, answer_key=keyed)
        return export_one(client, args.session_id, args.format, args.output, answer_key=keyed)
    finally:
        client.close()


def fetch_answer_key(client, record: dict) -> dict:
    """The interviewer's view of the record's challenge (hidden tests, notes); empty for
    custom text, or a challenge no longer in the library."""
    challenge_id = (record.get("challenge") or {}).get("id")
    if not challenge_id:
        return {}
    try:
        return client.challenge(challenge_id)
    except IBClientError as e:
        if e.status == 404:
            return {}
        raise


def _exporter(fmt: str):
    """review.export and what it renders ``fmt`` with, imported when a command exports
    (nbformat, nbconvert and plotly are slow to import; nbformat's jsonschema goes
    without its unused format checks, see lean_start).

    What the first import made lives until the process ends, so ``gc.freeze()`` then
    takes it out of the cyclic garbage collector's sight: the full collections of a long
    export (two for 1,000 messages) and those of the interpreter's shutdown went through
    all of it, to free nothing; about 0.4 s of CPU of a 1,000-message HTML export. (A
    frozen object is still freed when its last reference goes.)"""
    first = "ib_extension.review.export" not in sys.modules
    without_unused_format_checks()
    from ..review import export

    export.preload(fmt)
    if first:
        gc.freeze()
    return export


def _fetch(client, session_id: str, keyed: bool) -> tuple[dict, dict | None]:
    record = client.record(session_id)
    return record, fetch_answer_key(client, record) if keyed else None


def _render(client, record: dict, fmt: str, keyed: bool) -> str:
    export = _exporter(fmt)
    return export.render(record, fmt, fetch_answer_key(client, record) if keyed else None)


def export_one(client, session_id: str, fmt: str, output: str | None, *,
               answer_key: bool = True) -> int:
    path = Path(output) if output else Path(file_name(session_id, fmt))
    if path.is_dir():
        path = path / file_name(session_id, fmt)
    if not path.parent.is_dir():
        raise ValueError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    # The service reads the record (and the answer key) while this process imports.
    with ThreadPoolExecutor(1) as pool:
        fetched = pool.submit(_fetch, client, session_id, answer_key)
        export = _exporter(fmt)
        record, key = fetched.result()
    path.write_text(export.render(record, fmt, key), encoding="utf-8")
    print(path)
    return 0


def matching_ids(client, *, status: str | None, q: str | None) -> list[str]:
    """Ids of every session the filters match, read page by page."""
    ids: list[str] = []
    while True:
        page = client.list_sessions(status=status, q=q, limit=LIST_PAGE, offset=len(ids))
        ids += [s["id"] for s in page["sessions"]]
        if not page["sessions"] or len(ids) >= page["total"]:
            return ids


def export_all(client, fmt: str, folder: Path, *, status: str | None = None,
               q: str | None = None, err: TextIO | None = None, answer_key: bool = True) -> int:
    """Write every matching session to ``folder``; a session that fails is reported and
    skipped. Exit code 0 when all were written, 1 otherwise."""
    err = err or sys.stderr
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; --all writes one file per session into a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    ids = matching_ids(client, status=status, q=q)
    progress = Progress(len(ids), err)
    combined = folder / "all-sessions.csv" if fmt == "csv" else None
    failed, wrote_header = 0, False
    with combined.open("w", encoding="utf-8") if combined else nullcontext() as table:
        for sid in ids:
            progress.show(sid)
            try:
                text = _render(client, client.record(sid), fmt, answer_key)
            except (IBClientError, ValueError) as e:
                failed += 1
                progress.note(f"{sid}: not exported: {getattr(e, 'message', e)}")
                continue
            (folder / file_name(sid, fmt)).write_text(text, encoding="utf-8")
            if table is not None:  # one CSV row per session, one header on top
                header, *rows = text.splitlines(keepends=True)
                table.write(("" if wrote_header else header) + "".join(rows))
                wrote_header = True
        progress.done()
    if combined and not wrote_header:
        from ..review import analytics

        combined.write_text(",".join(analytics.summary_fields()) + "\n", encoding="utf-8")
    written = len(ids) - failed
    print(f"{written} of {len(ids)} session(s) exported to {folder}"
          + (f" ({failed} failed)" if failed else ""), file=err)
    return 1 if failed else 0


class Progress:
    """A text progress bar on stderr: redrawn in place on a terminal, one line per
    session when the output is a log (no escape codes in files)."""

    WIDTH = 30

    def __init__(self, total: int, out: TextIO):
        self.total, self.out, self.count = total, out, 0
        self.tty = getattr(out, "isatty", lambda: False)()

    def line(self, label: str) -> str:
        filled = self.WIDTH * self.count // self.total if self.total else self.WIDTH
        return (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{self.count}/{self.total} {label}")

    def show(self, label: str) -> None:
        self.count += 1
        if self.tty:
            self.out.write("\r\033[K" + self.line(label))
        else:
            self.out.write(self.line(label) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.out.write(("\n" if self.tty else "") + text + "\n")

    def done(self) -> None:
        if self.tty and self.total:
            self.out.write("\n")


