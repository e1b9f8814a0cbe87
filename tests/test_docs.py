"""docs/API.md stays honest: every error code, event type, session field and route the
service has is documented there (a test like datasette's)."""

from __future__ import annotations

import pytest
from helpers import REPO

from ib_extension.api.errors import KINDS
from ib_extension.api.events import EVENT_TYPES
from ib_extension.api.models import SessionView
from ib_extension.service.routes import ROUTES

DOC = (REPO / "docs" / "API.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("code", sorted(KINDS))
def test_every_error_code_is_documented(code):
    assert f"`{code}`" in DOC


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_documented(event_type):
    assert f"`{event_type}`" in DOC


@pytest.mark.parametrize("field", sorted(SessionView.model_fields))
def test_every_session_field_is_documented(field):
    assert f'"{field}"' in DOC


@pytest.mark.parametrize("template", sorted({t for t, _, _ in ROUTES if "/ib/api/sessions/{session_id}/" not in t}))
def test_every_route_is_documented(template):
    assert template.replace("{session_id}", "{id}").replace("{challenge_id}", "{id}") in DOC
