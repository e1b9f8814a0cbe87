"""The JSON export's schema, generated: what comes from the service is described by the
wire models (api/models.py) narrowed to the fields an export keeps; what the review
side computes (summary, provenance, timelines) by the fragments below. The committed
export_schema.json is this output (tests/test_export.py keeps them equal)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from ..api.models import ChallengeView, Grade, GradeTest, Message, SessionView

PATH = Path(__file__).with_name("export_schema.json")
# The review side's own outputs, described where they are not wire models.
COMPUTED = json.loads(Path(__file__).with_name("export_computed.json").read_text("utf-8"))


def narrowed(model: type[BaseModel], fields: tuple[str, ...], name: str,
             **extra: Any) -> type[BaseModel]:
    """`model` with only `fields` (plus `extra` ones), admitting nothing else: an export
    is built from an allowlist, so no token or key can ride along."""
    chosen = {f: (model.model_fields[f].annotation, model.model_fields[f]) for f in fields}
    return create_model(name, __config__=ConfigDict(extra="forbid"), **chosen, **extra)


def generate(session_fields, challenge_fields, message_fields, event_fields, payload_fields,
             grade_fields, test_fields, version: int) -> dict:
    test = narrowed(GradeTest, test_fields, "ExportedTest")
    parts = {
        "session": narrowed(SessionView, session_fields, "ExportedSession"),
        # The library's public text beyond what a session carries (the visible tests).
        "challenge": narrowed(ChallengeView, tuple(f for f in challenge_fields
                                                   if f in ChallengeView.model_fields),
                              "ExportedChallenge", **{f: (str, "") for f in challenge_fields
                                                      if f not in ChallengeView.model_fields}),
        "message": narrowed(Message, message_fields, "ExportedMessage"),
        "grade": narrowed(Grade, grade_fields, "ExportedGrade", tests=(list[test], ...)),
    }
    defs: dict[str, Any] = {}
    for name, model in parts.items():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[name] = schema
    computed = copy.deepcopy(COMPUTED)
    defs.update(computed["$defs"])
    defs["event"] = {
        "type": "object", "additionalProperties": False,
        "description": "An event of the catalogue (api/events.py); its payload keeps only "
                       "the fields the catalogue exports for its type.",
        "required": ["type", "at", "payload"],
        "properties": {**{f: {"type": ["integer", "string", "null"]} for f in event_fields},
                       "payload": {"type": "object", "propertyNames": {"enum": sorted(
                           {k for fields in payload_fields.values() for k in fields})}}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://interview-buddy.invalid/schemas/review-export-{version}.json",
        "title": "Interview Buddy review export",
        "description": "One interview as `ib export SESSION_ID --format json` writes it. "
                       "Generated from the service's wire models (ib_extension/api/models.py) "
                       "narrowed to the fields an export keeps. Times are ISO 8601 UTC "
                       "strings; `t` values are seconds since the session started.",
        "type": "object",
        "required": ["schema_version", "kind", "exported_by", "answer_key", "session", "challenge",
                     "messages", "events", "grade", "final_notebook", "summary",
                     "provenance", "timelines"],
        "additionalProperties": False,
        "properties": {
            "schema_version": {"const": version},
            "kind": {"const": "interview_buddy.review"},
            "exported_by": {"type": "string"},
            "session": {"$ref": "#/$defs/session"},
            "challenge": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/challenge"}]},
            "messages": {"type": "array", "items": {"$ref": "#/$defs/message"}},
            "events": {"type": "array", "items": {"$ref": "#/$defs/event"}},
            "grade": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/grade"}]},
            "final_notebook": {"type": ["object", "null"]},
            **computed["properties"],
        },
        "$defs": defs,
    }
