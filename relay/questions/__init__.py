"""Questions: the questionnaires an alert can carry (issue 16) — what organizations are asked
after an alert, by kind of organization (`catalog`: templates/questions/*.toml, each answer
checked), which questions an alert asks whom (`asked`), and answers written in one SMS reply
(`sms_answers`). Definitions and pure functions only: recording answers is the replies room's
(`relay/replies/answers.py`), the ward's picture of them the reports room's
(`relay/reports/answers.py`).

May import: foundation.
Must not import: messages, accounts, directory, delivery, replies, alerts, drills, cap, reports,
web, cli, channels, simulator, workers, jma.
"""
