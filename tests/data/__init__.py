"""Small data shipped with the tests (README.md here); tests read nothing outside the repository."""

from pathlib import Path

TEST_DATA = Path(__file__).resolve().parent
BUNNY = TEST_DATA / "bunny"
"""The Stanford bunny: 1,000 points per regime, a 5,000-face mesh, 10,000 surface samples."""
