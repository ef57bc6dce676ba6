"""Accounts: the people who use the relay — users, roles, API tokens and console passwords
(scrypt). Who may do what is decided here (`users.allowed`); the edges only ask.

May import: foundation.
Must not import: messages, questions, directory, delivery, replies, alerts, drills, cap, reports,
web, cli, channels, simulator, workers, jma.
"""
