"""Replies: what comes back from recipients and what the relay does about silence.

Reply parsing (`parsing`: 1 / 了解 / full-width digits / reference codes), inbound SMS
(`inbound`), acknowledgements recorded once (`acks`), signed acknowledgement links (`links`),
the call's key menu (`voice_script`), short confirmations (`reply_texts`), the cascade's next
steps when nobody answers (`escalation`), free-text reports for the ward (`inbound_reports`),
and answers to an alert's questions (`answers`: recorded, every version kept, the latest
counts).

May import: foundation, messages, questions, delivery.
Must not import: accounts, directory, alerts, drills, cap, reports, web, cli, channels, simulator,
workers, jma.
"""
