"""JMA bulletins (気象庁防災情報XML, issue 17): documents read safely (`parsing`, into the
plain records of `bulletin`), the ward's trigger rules (`rules`, default `kanazawa.yaml`), which
rules a bulletin meets (`matching`), what the relay does with it — a draft, an automatic
alert, an update, a cancel, or nothing but a record (`ingest`) — and the Atom PULL feeds
polled by `relay scheduler` (`feed`).

May import: foundation, messages, questions, directory, alerts.
Must not import: accounts, delivery, replies, drills, cap, reports, web, cli, channels,
simulator, workers.
"""
