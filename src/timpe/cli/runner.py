"""bin/test: the whole suite (pytest, run from the checkout's root)."""
import os
import sys

from timpe.paths import ROOT


def main(argv=None):
    import pytest

    os.chdir(ROOT)
    sys.exit(pytest.main(list(sys.argv[1:] if argv is None else argv)))
