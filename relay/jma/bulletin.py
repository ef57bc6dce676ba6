"""A JMA bulletin as the relay reads it: plain frozen records, filled by `parsing` and read by
`matching` and `ingest`. No parsing here.

What JMA writes is kept as JMA writes it (area codes as text: 1410800, 360, 312; names such as
横浜金沢区, 東京湾内湾; kind names such as 大津波警報：発表, レベル４土砂災害危険警報), so a
rule names what the bulletin says and an audit line can be checked against the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# JMA's seismic intensity codes (MaxInt, Int) from weakest to strongest. The index orders them:
# matching ranks an intensity as its index + 1 (震度1 = 1 … 震度7 = 9).
INTENSITIES = ("1", "2", "3", "4", "5-", "5+", "6-", "6+", "7")
# How people (and the message templates, relay/messages/variables.py) write them.
INTENSITY_JA = {
    "1": "1",
    "2": "2",
    "3": "3",
    "4": "4",
    "5-": "5弱",
    "5+": "5強",
    "6-": "6弱",
    "6+": "6強",
    "7": "7",
}
# What JMA writes, in VXSE53, for an intensity station whose value has not come in although
# it is thought to be 5弱 or more (City/Condition, IntensityStation/Int, Headline items).
UNREPORTED = "震度５弱以上未入電"

KINDS = ("intensity", "hypocentre", "tsunami", "warning", "landslide", "unknown")
SCOPES = ("pref", "area", "city", "station", "tsunami", "municipality")


@dataclass(frozen=True)
class AreaReport:
    """One area of a bulletin and what the bulletin says of it."""

    code: str  # JMA's area code as written (1410800, 360, 312, 1410000, 1410012 ...)
    name: str
    scope: str  # "pref" | "area" | "city" | "station" | "tsunami" | "municipality"
    intensity: str | None = None  # MaxInt/Int code (INTENSITIES), intensity bulletins only
    # 震度５弱以上未入電: a station here (or, for a pref/area, in a city within it) is thought
    # to be 5弱 or more but its value has not come in yet.
    unreported: bool = False
    # Warning / tsunami / landslide kind names in force here (Kind/Name as JMA writes it;
    # never 解除 or なし). A 土砂災害警戒情報 (VXWW50), whose Kind/Name is just 警戒, is named
    # by what the document is: 土砂災害警戒情報, or レベル４土砂災害危険警報 in the new wording.
    kinds: tuple[str, ...] = ()
    lifted: tuple[str, ...] = ()  # kinds lifted (解除) in this bulletin


@dataclass(frozen=True)
class Bulletin:
    """The parts of one JMA Report the relay acts on."""

    title: str  # Control/Title (what kind of document: 震度速報, 土砂災害警戒情報 ...)
    office: str  # Control/EditorialOffice
    status: str  # Control/Status: 通常 | 訓練 | 試験
    info_type: str  # Head/InfoType: 発表 | 訂正 | 取消
    info_kind: str  # Head/InfoKind
    event_id: str  # Head/EventID ("" when absent)
    serial: str  # Head/Serial ("" when absent)
    report_at: datetime  # Head/ReportDateTime, aware
    sent_at: datetime  # Control/DateTime, aware
    # "intensity" (VXSE51/53) | "hypocentre" (VXSE52) | "tsunami" (VTSE41/51) | "warning"
    # (VPWW53/54 and the 2026 VPWW55+) | "landslide" (VXWW50, old and new wording) | "unknown"
    kind: str
    headline: str  # Head/Headline/Text
    areas: tuple[AreaReport, ...] = ()
    hypocentre: str = ""  # e.g. "駿河湾 M6.6" where given
    text: str = ""  # the bulletin's own words for a person: headline + body comments, short
    # Additions (not part of JMA's series key):
    publisher: str = ""  # Control/PublishingOffice (気象庁, 横浜地方気象台 ...)
    head_title: str = ""  # Head/Title (遠地地震に関する情報, 神奈川県レベル４土砂災害危険警報 ...)

    def series(self) -> tuple[str, str, str, str]:
        """JMA's series key: title + editorial office + status (+ event id). Within a series
        the bulletin with the latest report time is the one in force."""
        return (self.title, self.office, self.status, self.event_id)
