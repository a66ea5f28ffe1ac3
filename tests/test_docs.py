import doctest
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_example_page_runs():
    result = doctest.testfile(str(DOCS / "example.rst"), module_relative=False,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted > 15
    assert result.failed == 0
