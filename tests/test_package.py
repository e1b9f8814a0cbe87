"""The installed package: enabled on install, every setting documented, CLI entry points."""

import subprocess
import sys
from pathlib import Path

import pytest

from ib_extension.service.app import IBExtension

REPO = Path(__file__).resolve().parent.parent


def test_server_extension_is_enabled_on_install():
    out = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    line = next((ln for ln in text.splitlines() if "ib_extension" in ln), "")
    assert "enabled" in line and "disabled" not in line, text


SETTINGS = sorted(name for name, trait in IBExtension.class_traits(config=True).items()
                  if trait.__class__.__module__.startswith("traitlets")
                  and name in IBExtension.class_own_traits())


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_has_help_and_is_in_the_readme(name):
    trait = IBExtension.class_traits()[name]
    assert len(trait.help) >= 20, f"IBExtension.{name} needs a real help text"
    assert f"`{name}`" in (REPO / "README.md").read_text(), f"README does not document {name}"


def test_ib_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "ib_extension.cli", "--help"],
                         capture_output=True, text=True, timeout=60)
    for sub in ("serve", "fake-llm", "demo", "session"):
        assert sub in out.stdout
