"""Short texts the relay sends back to an SMS reply, per language. Kept to one segment where
possible (UCS-2: 70 characters)."""

from __future__ import annotations

from relay.models import Alert

_CONFIRM = {
    "ja": "【金沢区】{ref}「{label}」を受け付けました。ありがとうございます。",
    "ja-easy": "【金沢区】{ref}「{label}」を うけつけました。ありがとう ございます。",
    "en": '[Kanazawa Ward] {ref}: recorded "{label}". Thank you.',
}
_HELP = {
    "ja": "【金沢区】確認は「1」を返信してください。例: {ref} 1",
    "ja-easy": "【金沢区】わかったら「1」を へんしん してください。",
    "en": "[Kanazawa Ward] To acknowledge, reply 1 (e.g. {ref} 1).",
}
_REPORT = {
    "ja": "【金沢区】ご連絡を区役所に伝えました。確認は「1」を返信してください。",
    "ja-easy": "【金沢区】れんらくを くやくしょに つたえました。",
    "en": "[Kanazawa Ward] Your message was passed to the ward office. Reply 1 to acknowledge.",
}


def _pick(table: dict[str, str], language: str) -> str:
    return table.get(language, table["ja"])


def confirmation(alert: Alert, label: str, language: str) -> str:
    return _pick(_CONFIRM, language).format(ref=alert.reference, label=label)


def help_text(alert: Alert | None, language: str) -> str:
    return _pick(_HELP, language).format(ref=alert.reference if alert else "K7QF")


def report_received(alert: Alert | None, language: str) -> str:
    return _pick(_REPORT, language)
