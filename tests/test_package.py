"""The installed package: two extensions enabled only where they run, every setting
documented, a light CLI."""

import subprocess
import sys
from pathlib import Path

import pytest

from ib_extension.candidate.app import IBCandidate
from ib_extension.hub.authenticator import CandidateLinks
from ib_extension.hub.config import IBHub
from ib_extension.service.app import IBExtension

REPO = Path(__file__).resolve().parent.parent


def test_no_extension_is_enabled_by_installing_the_package():
    """A plain `jupyter lab` in the same environment must stay a plain JupyterLab: the
    service and the candidate's side are enabled by the commands that run them."""
    out = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert "jupyterlab" in text  # the listing worked
    assert "ib_extension" not in text, text


@pytest.mark.parametrize("module, app", [("ib_extension.service", IBExtension),
                                         ("ib_extension.candidate", IBCandidate)])
def test_each_side_is_an_extension_point(module, app):
    import importlib

    points = importlib.import_module(module)._jupyter_server_extension_points()
    assert points == [{"module": module, "app": app}]


SETTINGS = [(cls, name) for cls in (IBExtension, IBCandidate, IBHub, CandidateLinks)
            for name, trait in sorted(cls.class_traits(config=True).items())
            if trait.__class__.__module__.startswith("traitlets") and name in cls.class_own_traits()]


@pytest.mark.parametrize("cls, name", SETTINGS, ids=[f"{c.__name__}.{n}" for c, n in SETTINGS])
def test_every_setting_has_help_and_is_in_the_readme(cls, name):
    trait = cls.class_traits()[name]
    assert len(trait.help) >= 20, f"{cls.__name__}.{name} needs a real help text"
    assert f"`{name}`" in (REPO / "README.md").read_text(), f"README does not document {name}"


def test_ib_help_imports_no_jupyter_server_code():
    probe = ("import sys, contextlib, io\n"
             "from ib_extension.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
             "    main(['--help'])\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('jupyter_server', 'jupyterlab', 'jupyterlab_server', 'tornado', 'duckdb', 'plotly', "
             "'nbclient', 'voila'))\n"
             "print(heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ib_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "ib_extension.cli", "--help"],
                         capture_output=True, text=True, timeout=60)
    for sub in ("serve", "fake-llm", "demo", "session"):
        assert sub in out.stdout
