"""SMS segments per built-in template (issue 15): what each first SMS costs at the provider.

Twilio bills and rate-limits SMS per segment, so this table is the cost and the minutes of the
ward's SMS wave per recipient. Rendered with the issue's realistic values and a link under a
30-character public URL (the 12-character token of relay/replies/links.py), for a real alert
and a drill, with replies on. Not a timing: the figures are exact and do not vary by machine.

    .venv/bin/python -m ops.bench.segments          # writes ops/bench/SEGMENTS.md
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from relay.messages import (
    LANGUAGES,
    TARGET_SEGMENTS,
    MessageContext,
    list_templates,
    render,
    sample_variables,
    sms_units,
)
from relay.replies.links import TOKEN_LENGTH, link_url

OUT = Path(__file__).with_name("SEGMENTS.md")
LINK = link_url("https://bousai.city.example.jp", "x" * TOKEN_LENGTH)


def rows() -> list[str]:
    lines = []
    for event in list_templates():
        cells = []
        for language in LANGUAGES:
            for status in ("Actual", "Exercise"):
                context = MessageContext(
                    status, datetime.now(UTC), "K7QF", LINK, True, "西柴自治会", "山田 花子"
                )
                message = render(event, "sms", language, sample_variables(event), context)
                cells.append(f"{message.segments} ({sms_units(message.text)})")
        lines.append(f"| {event} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    head = " | ".join(f"{lang} real | {lang} drill" for lang in LANGUAGES)
    targets = ", ".join(f"{lang} {n}" for lang, n in TARGET_SEGMENTS.items())
    text = "\n".join(
        [
            "# SMS segments per template",
            "",
            "Segments (characters) of each built-in template's first SMS, with the catalog's",
            "sample values (the realistic ones of issue 15) and a link under a 30-character",
            f"public URL ({len(LINK)} characters). Targets: {targets}.",
            "Reproduce: `.venv/bin/python -m ops.bench.segments`.",
            "",
            f"| template | {head} |",
            "|---" * (1 + 2 * len(LANGUAGES)) + "|",
            *rows(),
            "",
        ]
    )
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
