"""The six scenarios of issue 8, one module each: `run(bench) -> dict` returns the scenario's
title, rows (the figures and their verdicts), details and how to reproduce it alone."""
