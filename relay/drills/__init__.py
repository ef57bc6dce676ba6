"""Drills: scheduled exercises — standard cron in Asia/Tokyo (`cron`), schedules, the tick that
fires each fire time exactly once, catch-up or `missed` runs, and closing runs (`service`).

A drill run issues an ordinary 【訓練】 alert through alerts; reports read its results.

May import: foundation, directory, delivery, alerts.
Must not import: messages, questions, accounts, replies, cap, reports, web, cli, channels,
simulator, workers, jma.
"""
