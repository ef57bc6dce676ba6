"""The Kanazawa emergency information relay.

The modules at this level are the foundation every room stands on: `config` (settings from
the environment), `db` (engines, sessions, transactions), `models` (the tables), `migrate` and
`migrations/` (Alembic), `audit` (the audit trail), `clock`, `timefmt`, `durations`, `logs`,
`spreadsheet` (CSV cells no spreadsheet runs as formulas).
The rooms are packages, listed in the order an alert passes through them; each room's
docstring says what it may import, and tests/test_import_rules.py holds every module to it:

    messages · accounts · directory · delivery · replies · alerts · drills · cap · reports · jma
    web · cli   (the edges: HTTP and the command line)

May import: channels.
Must not import: messages, questions, accounts, directory, delivery, replies, alerts, drills, cap,
reports, web, cli, simulator, workers, jma.
"""
