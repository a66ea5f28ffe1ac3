"""Locate and read the DDL files under etc/mappings/<adapter>/."""
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "etc" / "mappings"


def statements(adapter, directory=None):
    """Yield (table, statement) for every DDL statement of ``adapter``."""
    folder = Path(directory or DEFAULT_DIR) / adapter
    files = sorted(folder.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no DDL files in {folder}")
    for path in files:
        for stmt in split(path.read_text()):
            yield path.stem, stmt


def split(text):
    """Split a DDL file on ';', dropping '--' comments."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
