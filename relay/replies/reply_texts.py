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


_ANSWERS = {
    "ja": "【金沢区】{ref} 回答{n}件を受け付けました。変更は同じ形で再送を。",
    "ja-easy": "【金沢区】{ref} こたえ {n}こを うけつけました。",
    "en": "[Kanazawa Ward] {ref}: {n} answer(s) recorded. Send again to change them.",
}
_ANSWER_HELP = {
    "ja": "【金沢区】{problem}。例: 1 2 0 3（質問の順）/ 避難者 45",
    "ja-easy": "【金沢区】{problem}。れい: 1 2 0 3",
    "en": "[Kanazawa Ward] {problem}. E.g. 1 2 0 3 (in question order) or sheltering 45",
}


def _pick(table: dict[str, str], language: str) -> str:
    return table.get(language, table["ja"])


def confirmation(alert: Alert, label: str, language: str) -> str:
    return _pick(_CONFIRM, language).format(ref=alert.reference, label=label)


def help_text(alert: Alert | None, language: str) -> str:
    return _pick(_HELP, language).format(ref=alert.reference if alert else "K7QF")


def report_received(alert: Alert | None, language: str) -> str:
    return _pick(_REPORT, language)


def answers_recorded(alert: Alert, count: int, language: str) -> str:
    return _pick(_ANSWERS, language).format(ref=alert.reference, n=count)


def answer_help(alert: Alert, problem: str, language: str) -> str:
    """One line: what could not be taken (in Japanese: the questions' labels are), and how to
    write answers."""
    return _pick(_ANSWER_HELP, language).format(problem=problem or "回答を読み取れません")
