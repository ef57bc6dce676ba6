"""The scenarios of issues 8 (s1–s6) and 15 (s7), one module each: `run(bench) -> dict`
returns the scenario's title, rows (the figures and their verdicts), details and how to
reproduce it alone."""
