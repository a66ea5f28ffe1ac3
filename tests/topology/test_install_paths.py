"""The seed's other ways in: bin/sphinx builds the docs, buildout makes bin/."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from timpe.paths import BIN, ROOT


def test_sphinx_builds_the_docs():
    done = subprocess.run([str(BIN / "sphinx"), "-q"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    index = ROOT / "out" / "html" / "index.html"
    assert "TiMPE" in index.read_text()


def test_buildout_generates_the_bin_commands(tmp_path):
    buildout = Path(sys.executable).parent / "buildout"
    if not buildout.exists():
        pytest.skip("zc.buildout is not installed (pip install -e '.[test]')")
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    assert files.returncode == 0, "the buildout test copies the git checkout"
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file() and not name.startswith("bin/"):
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    # -N: keep what is installed; the venv's packages satisfy every egg.
    done = subprocess.run([str(buildout), "-N"], cwd=checkout, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    commands = sorted(p.name for p in BIN.iterdir() if not p.name.startswith("."))
    assert sorted(p.name for p in (checkout / "bin").iterdir()) == commands
    crash = subprocess.run([str(checkout / "bin" / "crash"), "-c", "SELECT 1 AS one",
                            "--config", str(checkout / "etc" / "app.ini")],
                           capture_output=True, text=True, timeout=60)
    assert crash.returncode == 0 and "| one |" in crash.stdout, crash.stderr
