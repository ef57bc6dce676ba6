"""`python -m simulator ...`: the carrier simulator as a process of its own."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
