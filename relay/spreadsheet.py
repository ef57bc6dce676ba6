"""CSV cells that a spreadsheet will not run (OWASP, "CSV Injection").

Excel and LibreOffice treat a cell that begins with = + - @ (or a tab or carriage return
before one) as a formula: a directory entry named `=HYPERLINK("http://…","…")` would become a
live link in the ward's own export. Every CSV the relay writes passes its cells through
`safe_cell`, which puts a single quote before such a value — the spreadsheet shows it as text —
and before a value that already begins with a quote, so that `plain_cell` on import gives back
exactly what was exported. An E.164 number (+8190…) is escaped too: it is shown as text, which
also keeps its digits from becoming a number.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def safe_cell(value: object) -> object:
    """The value as it may go into a CSV cell; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def plain_cell(value: str) -> str:
    """An imported cell without the quote that `safe_cell` (or a spreadsheet user typing
    '090… to keep the leading zero) put before it."""
    return value[1:] if value.startswith("'") else value
