"""The benchmark suite (issues 8 and 15): `make bench` or `python -m ops.bench [--quick]`.

Every figure that matters is a ratio against a reference measured in the same run on the same
machine (the asyncio-only limit, the one-task-per-message design, a no-op endpoint), because
the machines this runs on are shared and noisy. run.py lists the scenarios and runs them; each
is a module of scenarios/.
"""
