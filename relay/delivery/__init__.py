"""Delivery: getting planned messages to the providers and learning what became of them.

The outbox (`outbox`: tasks published only after commit, and re-published by the sweeper),
`dispatch` (a plan into batches per channel), `sending` (claim, pace, send, record), the shared
rate limiter (`ratelimit`), the delivery state machine (`states`), provider events into
forward-only states (`tracking`), sends lost to a crash sent again (`recovery`), the broker's
queue depths (`queue_depth`) and the per-process `runtime` (channels, limiters, event loop).

Delivery moves messages; it never decides what an answer means: it does not import replies.

May import: foundation, channels.
Must not import: messages, questions, accounts, directory, replies, alerts, drills, cap, reports,
web, cli, simulator, workers, jma.
"""
