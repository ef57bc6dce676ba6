"""Alerts: an alert's life — issue it (`issuing`: validate, resolve the audience, render, plan,
in one transaction), follow it (`status`), change it (`lifecycle`: update, cancel, manual
acknowledgement) and close it at its deadline with the summary to the ward office
(`deadlines`).

May import: foundation, messages, questions, directory, delivery, replies.
Must not import: accounts, drills, cap, reports, web, cli, channels, simulator, workers, jma.
"""
