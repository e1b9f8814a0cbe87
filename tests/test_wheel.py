"""The wheel a candidate's environment installs: notebooks inside, no answer key, and the
notebooks found from the installed copy (not a source checkout)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from helpers import REPO

from ib_extension.api.challenges import load_library


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
                   cwd=REPO, check=True, capture_output=True, timeout=300)
    return zipfile.ZipFile(next(out.glob("*.whl")))


def test_the_wheel_holds_no_hidden_test_reference_solution_or_interviewer_note(wheel):
    library = load_library([REPO / "challenges"])
    secrets = [text for ch in library.search()
               for text in (ch.hidden_tests, ch.reference_solution, ch.interviewer_notes)
               if len(text.strip()) > 40]
    assert len(secrets) > 20  # the library has an answer key worth hiding
    names = wheel.namelist()
    assert not [n for n in names if n.endswith(".md") and "challenge" in n.lower()]
    for name in names:
        body = wheel.read(name).decode("utf-8", errors="replace")
        leaked = [s[:40] for s in secrets if s.strip() in body]
        assert not leaked, f"{name} carries part of the answer key: {leaked}"


def test_the_installed_package_finds_its_notebooks_without_a_checkout(wheel, tmp_path):
    wheel.extractall(tmp_path / "site")
    probe = ("from ib_extension.api import resources\n"
             "print(resources.dashboards_dir())\nprint(resources.candidate_template())")
    # -S: no site-packages, so the editable install of this checkout is out of reach.
    out = subprocess.run([sys.executable, "-S", "-c",
                          f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n" + probe],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    dashboards, template = out.stdout.split()
    assert dashboards.startswith(str(tmp_path / "site"))
    assert template.startswith(str(tmp_path / "site")) and template.endswith("interview.ipynb")
