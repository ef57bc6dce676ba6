"""A report as CSV or as an HTML page with charts (inline SVG: the file works offline)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from relay.reports import labels_ja
from relay.spreadsheet import safe_cell

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_env.globals.update(
    KIND=labels_ja.KIND,
    CHANNEL=labels_ja.CHANNEL,
    METHOD=labels_ja.ACK_METHOD,
    MODE=labels_ja.MODE,
)
_env.filters["attempt"] = labels_ja.attempt


def to_csv(report: dict[str, Any]) -> str:
    """One row per organization-group figure, easy to open in Excel."""
    out = io.StringIO()
    writer = _SafeWriter(csv.writer(out, lineterminator="\n"))
    writer.writerow(["section", "name", "organizations", "acknowledged", "rate"])
    writer.writerow(
        ["total", "", report["organizations"], report["acknowledged"], report["rates"]["deadline"]]
    )
    for mark, value in report["rates"].items():
        writer.writerow(["rate_at", mark, report["organizations"], "", value])
    for row in report["by_district"]:
        writer.writerow(
            ["district", row["district"], row["organizations"], row["acknowledged"], row["rate"]]
        )
    for row in report["by_kind"]:
        writer.writerow(
            ["kind", row["kind"], row["organizations"], row["acknowledged"], row["rate"]]
        )
    for channel, counts in report["channels"].items():
        for key, value in counts.items():
            writer.writerow(["channel", f"{channel}.{key}", "", value, ""])
    for org in report["never_answered"]:
        writer.writerow(["never_answered", org["code"], org["name"], org["district"], ""])
    for q in report.get("answers", {}).get("questions", []):
        # section, question.option (or .sum), organizations asked, organizations answered, value
        for number, count in q.get("options", {}).items():
            label = q["option_labels"][number]
            writer.writerow(
                ["answer", f"{q['id']}.{number} {label}", q["asked"], q["answered"], count]
            )
        if "sum" in q:
            writer.writerow(["answer", f"{q['id']}.sum", q["asked"], q["answered"], q["sum"]])
    return out.getvalue()


class _SafeWriter:
    """A csv writer whose cells no spreadsheet runs as formulas (an organization's name is
    whatever the directory says)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])


def _line_chart(
    series: list[tuple[str, str, list[dict[str, float]]]], width: int = 640, height: int = 260
) -> Markup:
    """Cumulative acknowledgement curves: x = minutes, y = share of organizations."""
    pad = 40
    horizon = max((p["minute"] for _, _, pts in series for p in pts), default=1) or 1

    def x(m: float) -> float:
        return pad + (width - 2 * pad) * m / horizon

    def y(r: float) -> float:
        return height - pad - (height - 2 * pad) * r

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="acknowledgements over time" class="chart">'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="4" y="{y(tick) + 4:.1f}" font-size="11">'
            f"{int(tick * 100)}%</text>"
        )
    for m in range(0, int(horizon) + 1, max(1, int(horizon) // 6)):
        parts.append(
            f'<text x="{x(m):.1f}" y="{height - 12}" font-size="11" '
            f'text-anchor="middle">{m}分</text>'
        )
    for label, colour, points in series:
        path = " ".join(f"{x(p['minute']):.1f},{y(p['rate']):.1f}" for p in points)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{path}">'
            f"<title>{label}</title></polyline>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built from numbers and our own labels


def _counts(row: dict[str, Any]) -> str:
    return f" ({row['acknowledged']}/{row['organizations']})" if row.get("organizations") else ""


def _bar_chart(
    rows: list[dict[str, Any]], key: str, width: int = 640, names: dict[str, str] | None = None
) -> Markup:
    bar, gap, label_w = 18, 6, 150
    height = len(rows) * (bar + gap) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart">'
    ]
    for i, row in enumerate(rows):
        top = i * (bar + gap) + 5
        length = (width - label_w - 110) * float(row["rate"])  # room for the label
        raw = str(row[key])
        name = (names or {}).get(raw, raw).replace("&", "&amp;").replace("<", "&lt;")
        parts.append(
            f'<text x="0" y="{top + 14}" font-size="12">{name}</text>'
            f'<rect x="{label_w}" y="{top}" width="{length:.1f}" height="{bar}" fill="#2563eb"/>'
            f'<text x="{label_w + length + 4:.1f}" y="{top + 14}" font-size="12">'
            f"{row['rate'] * 100:.0f}%{_counts(row)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - names escaped above


def _trend(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The rate at the deadline of the previous runs (oldest first) and of this one."""
    this = {"run_id": report.get("run", {}).get("id"), "rates": report["rates"]}
    runs = [*reversed(report.get("previous", [])), this]
    return [
        {
            "run": f"#{r['run_id']}",
            "rate": r["rates"]["deadline"],
            "acknowledged": "",
            "organizations": "",
        }
        for r in runs
    ]


def to_html(report: dict[str, Any]) -> str:
    series = [("今回", "#dc2626", report["timeline"])]
    return _env.get_template("report.html").render(
        report=report,
        trend_chart=_bar_chart(_trend(report), "run"),
        timeline_chart=_line_chart(series),
        district_chart=_bar_chart(report["by_district"], "district"),
        kind_chart=_bar_chart(report["by_kind"], "kind", names=labels_ja.KIND),
    )
