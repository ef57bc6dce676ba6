"""Directory: the ward's organizations and contacts — the CSV format (`csv_format`), phone
numbers as E.164 (`phones`), the import that adds, updates and deactivates (`store`), and
audience selectors resolved to the people an alert reaches (`audience`).

It knows nothing of alerts: an audience resolves to plain rows that issuing plans from.

May import: foundation.
Must not import: messages, questions, accounts, delivery, replies, alerts, drills, cap, reports,
web, cli, channels, simulator, workers, jma.
"""
