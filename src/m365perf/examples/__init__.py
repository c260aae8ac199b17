"""The examples that ship with m365perf: three flows, the demo register and directory.

They are package data so that ``m365perf demo`` and ``m365perf plan`` find them after
``pip install``, from any working directory. The repository keeps one copy, here:
``flows/`` and ``config/demo-*.csv`` at its root are links to these files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["DIRECTORY_CSV", "FLOWS_DIR", "REGISTER_CSV", "examples_dir"]


def examples_dir() -> Path:
    """This folder as installed (a real folder: the wheel is never imported zipped)."""
    return Path(str(files(__name__)))


FLOWS_DIR = examples_dir() / "flows"
REGISTER_CSV = examples_dir() / "demo-register.csv"
DIRECTORY_CSV = examples_dir() / "demo-directory.csv"
