import doctest
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_example_page_runs():
    result = doctest.testfile(str(DOCS / "example.rst"), module_relative=False,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted > 15
    assert result.failed == 0


def test_the_docs_build_without_a_warning(tmp_path):
    # -W: a malformed table or a broken reference fails the build.
    from sphinx.cmd.build import main as sphinx_build
    assert sphinx_build(["-E", "-q", "-W", "-b", "html", str(DOCS), str(tmp_path / "html")]) == 0
