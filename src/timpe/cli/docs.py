"""bin/sphinx: build docs/ into out/html/."""
import sys

from timpe.paths import ROOT


def main(argv=None):
    from sphinx.cmd.build import main as sphinx_build

    out = ROOT / "out" / "html"
    argv = list(sys.argv[1:] if argv is None else argv)
    status = sphinx_build(["-b", "html", *argv, str(ROOT / "docs"), str(out)])
    if status == 0:
        print(f"documentation: {out / 'index.html'}")
    sys.exit(status)
