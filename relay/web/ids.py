"""Row ids in URL paths, for the API and the console alike: 64-bit, as the database keys are.
A larger number is a 422 at the edge — the database drivers raise OverflowError (a 500) on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
