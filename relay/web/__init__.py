"""The HTTP edge (`relay serve`): the API (`api`), Twilio's webhooks (`twilio_webhooks`,
`status_ingest`), acknowledgement links (`links`), CAP over HTTP (`cap_http`), /metrics and the
operators' console (`console/`). Handlers parse and authorize, then call one room's service.

May import: foundation, messages, questions, accounts, directory, delivery, replies, alerts, drills,
cap, reports, channels, jma.
Must not import: cli, simulator, workers.
"""
