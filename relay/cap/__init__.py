"""CAP 1.2 in and out: an alert exported as a CAP document (`export`), a CAP document issued
as an alert (`importing`), and the document checks (`schema`).

May import: foundation, messages, directory, alerts.
Must not import: questions, accounts, delivery, replies, drills, reports, web, cli, channels,
simulator, workers, jma.
"""
