#!/usr/bin/env python3
"""Command line client for an abcd cluster (the same as `abcdctl`); see abcd/cli.py.

Runs from a checkout without installing: the repository root is put on sys.path when
the `abcd` package cannot be imported otherwise.
"""
import os
import sys

try:
    import abcd.cli  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from abcd.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
