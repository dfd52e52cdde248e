"""Where the repository's own files are, for tests in any folder."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GRAMMAR = ROOT / "grammar"
