"""SMS segments per built-in template (issue 15): what each first SMS costs at the provider.

Twilio bills and rate-limits SMS per segment, so this table is the cost and the minutes of the
ward's SMS wave per recipient. Rendered with the issue's realistic values and a link under a
30-character public URL (the 12-character token of relay/replies/links.py), for a real alert
and a drill, with replies on. Not a timing: the figures are exact and do not vary by machine.
Every benchmark run includes it as a section of RESULTS.md (`section()`).

    .venv/bin/python -m ops.bench.segments          # writes ops/bench/SEGMENTS.md
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
STATUSES = ("Actual", "Exercise")


def measure() -> dict[str, dict[str, list[int]]]:
    """Per template, per "LANGUAGE STATUS": [segments, characters] of its first SMS."""
    found: dict[str, dict[str, list[int]]] = {}
    for event in list_templates():
        found[event] = {}
        for language in LANGUAGES:
            for status in STATUSES:
                context = MessageContext(
                    status, datetime.now(UTC), "K7QF", LINK, True, "西柴自治会", "山田 花子"
                )
                message = render(event, "sms", language, sample_variables(event), context)
                found[event][f"{language} {status}"] = [
                    message.segments,
                    sms_units(message.text),
                ]
    return found


def table(measured: dict[str, dict[str, list[int]]]) -> list[str]:
    """The markdown table: a row per template, segments (characters) per language and status."""
    head = " | ".join(f"{lang} real | {lang} drill" for lang in LANGUAGES)
    lines = [f"| template | {head} |", "|---" * (1 + 2 * len(LANGUAGES)) + "|"]
    for event, cells in measured.items():
        values = [f"{segs} ({chars})" for segs, chars in cells.values()]
        lines.append(f"| {event} | " + " | ".join(values) + " |")
    return lines


def over_target(measured: dict[str, dict[str, list[int]]]) -> list[str]:
    """The template × language × status whose first SMS runs over its language's target."""
    return [
        f"{event} {key}"
        for event, cells in measured.items()
        for key, (segs, _) in cells.items()
        if segs > TARGET_SEGMENTS[key.split()[0]]
    ]


def _intro() -> list[str]:
    targets = ", ".join(f"{lang} {n}" for lang, n in TARGET_SEGMENTS.items())
    return [
        "Segments (characters) of each built-in template's first SMS, with the catalog's",
        "sample values (the realistic ones of issue 15) and a link under a 30-character",
        f"public URL ({len(LINK)} characters). Targets: {targets}.",
    ]


def section() -> dict[str, Any]:
    """The table as a section of a benchmark run (ops/bench/report.py)."""
    from ops.bench.harness import row

    measured = measure()
    over = over_target(measured)
    cases = sum(len(cells) for cells in measured.values())
    return {
        "title": "SMS segments per template (first SMS, issue 15)",
        "rows": [
            row(
                f"first SMS over its language's target, of {cases} (template × language × "
                "real/drill)",
                len(over),
                "0",
                not over,
            )
        ],
        "details": {"segments_and_characters": measured, "over_target": over},
        "notes": [" ".join(_intro()), "\n".join(table(measured))],
        "reproduce": ".venv/bin/python -m ops.bench.segments",  # writes ops/bench/SEGMENTS.md
        "seconds": 0,
    }


def main() -> None:
    text = "\n".join(
        [
            "# SMS segments per template",
            "",
            *_intro(),
            "Reproduce: `.venv/bin/python -m ops.bench.segments`.",
            "",
            *table(measure()),
            "",
        ]
    )
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
