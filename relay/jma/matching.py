"""Which trigger rules a bulletin meets: a pure function of the bulletin's areas and kinds.

Status (通常/訓練/試験), InfoType (発表/訂正/取消) and the bulletin's age are the ingest's to judge
(relay/jma/ingest.py); a 取消 carries no body and meets nothing.

- A rule reads the bulletins of its kinds (and, when it names titles, only those titles).
- An intensity rule meets the areas it names (pref, area or city codes; stations are never
  matched by code, they only mark their city) whose intensity is at least the rule's
  `min_intensity`. An area with a 震度５弱以上未入電 station counts as 5弱: possibly 5弱 or
  more, not yet known — the summary says so.
- A tsunami, warning or landslide rule meets the areas it names where a kind it lists is in
  force (names compared after NFKC, so レベル4 and レベル４ are the same).

Strength, comparable within one rule (the ingest sends again only for a stronger bulletin):
intensity rank (INTENSITIES index + 1: 震度5弱 = 5), tsunami grade (津波注意報 1 < 津波警報 2 <
大津波警報 3), and for warnings and landslides the evacuation level the kind implies (below).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relay.jma.bulletin import INTENSITIES, INTENSITY_JA, UNREPORTED, AreaReport, Bulletin
from relay.jma.parsing import tsunami_grade
from relay.jma.rules import PLACEHOLDERS, Rule
from relay.timefmt import TOKYO

AREA_MAX = 30  # the templates' `area` variable takes at most 30 characters
SUMMARY_AREAS = 5  # areas named in a summary before "ほか"
UNREPORTED_NOTE = f"{UNREPORTED}の観測点あり（震度5弱以上の可能性）"
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_LEVEL = re.compile(r"レベル([1-5])")


@dataclass(frozen=True)
class Trigger:
    rule: Rule
    variables: dict[str, str]  # the rule's variables, filled in
    strength: int  # comparable within one rule (see the module's docstring)
    areas: tuple[AreaReport, ...]  # the areas that matched
    # Japanese, one or two lines for the draft and the audit, e.g.
    # "横浜金沢区 震度5弱（2024年6月13日 10:20 気象庁発表）"
    summary: str


def match(bulletin: Bulletin, rules: Sequence[Rule]) -> list[Trigger]:
    """The triggers of `rules` (in the rules' order) that `bulletin` meets."""
    if bulletin.info_type == "取消":
        return []
    triggers: list[Trigger] = []
    for rule in rules:
        if bulletin.kind not in rule.kinds or (rule.titles and bulletin.title not in rule.titles):
            continue
        if bulletin.kind == "intensity":
            trigger = _intensity(bulletin, rule)
        elif bulletin.kind in ("tsunami", "warning", "landslide"):
            trigger = _kinds(bulletin, rule)
        else:
            trigger = None
        if trigger is not None:
            triggers.append(trigger)
    return triggers


def evacuation_level(kind: str) -> int:
    """The evacuation alert level (警戒レベル) a warning kind implies, for {level} and for the
    strength of warning and landslide rules:

    - the 2026 names say it: レベル５大雨特別警報 5, レベル４土砂災害危険警報 4, レベル３大雨警報 3,
      レベル２大雨注意報 2;
    - 土砂災害警戒情報 4 (JMA: 警戒レベル４相当情報［土砂災害］), 高潮警報 and 高潮特別警報 4
      (JMA's table: 警戒レベル4相当);
    - other 特別警報 5: 大雨特別警報 is 警戒レベル5相当; 暴風・大雪・波浪… 特別警報 have no
      official level and are drafted at 5 (緊急安全確保) for the operator to review;
    - other 警報 3 (大雨警報, 洪水警報: 警戒レベル3相当; the evacuation template's lowest);
    - 注意報 2; anything else 0.
    """
    name = unicodedata.normalize("NFKC", kind)
    found = _LEVEL.search(name)
    if found:
        return int(found.group(1))
    if "土砂災害警戒情報" in name or "危険警報" in name:
        return 4
    if name.startswith("高潮") and "警報" in name and "注意報" not in name:
        return 4
    if "特別警報" in name:
        return 5
    if "警報" in name and "注意報" not in name:
        return 3
    if "注意報" in name:
        return 2
    return 0


# ---- intensity ----------------------------------------------------------------------------


def rank(area: AreaReport) -> int:
    """The area's intensity rank (INTENSITIES index + 1), 5弱 (5) at least when a station is
    震度５弱以上未入電; 0 when it reports none."""
    known = INTENSITIES.index(area.intensity) + 1 if area.intensity in INTENSITIES else 0
    return max(known, INTENSITIES.index("5-") + 1) if area.unreported else known


def _intensity(bulletin: Bulletin, rule: Rule) -> Trigger | None:
    if rule.min_intensity not in INTENSITIES:
        return None
    least = INTENSITIES.index(rule.min_intensity) + 1
    met = tuple(
        a
        for a in bulletin.areas
        if a.scope != "station" and a.code in rule.area_codes and rank(a) >= least
    )
    if not met:
        return None
    strength = max(rank(a) for a in met)
    intensity = INTENSITY_JA[INTENSITIES[strength - 1]]
    values = {"intensity": intensity, "area": _area_names(met)}
    lines = [f"{_said(_intensity_words(a) for a in met)}（{_when(bulletin)}）"]
    if bulletin.hypocentre:
        lines.append(f"震源 {bulletin.hypocentre}")
    return Trigger(rule, _fill(rule, values), strength, met, "\n".join(lines))


def _intensity_words(area: AreaReport) -> str:
    known = f"震度{INTENSITY_JA[area.intensity]}" if area.intensity in INTENSITY_JA else ""
    if area.unreported:
        return f"{area.name} " + "、".join(w for w in (known, UNREPORTED_NOTE) if w)
    return f"{area.name} {known}"


# ---- tsunami, warnings, landslides --------------------------------------------------------


def _norm(name: str) -> str:
    return unicodedata.normalize("NFKC", name).replace(" ", "")


def _kinds(bulletin: Bulletin, rule: Rule) -> Trigger | None:
    wanted = {_norm(w) for w in rule.warnings}
    met: list[AreaReport] = []
    named: list[str] = []
    words: list[str] = []
    for area in bulletin.areas:
        if area.code not in rule.area_codes:
            continue
        kinds = [k for k in area.kinds if _norm(k) in wanted]
        if kinds:
            met.append(area)
            named.extend(kinds)
            words.append(f"{area.name} {'・'.join(kinds)}")
    if not met:
        return None
    kinds = list(dict.fromkeys(named))
    if bulletin.kind == "tsunami":
        strength = max(tsunami_grade(k) for k in kinds)
        level = ""
    else:
        strength = max(evacuation_level(k) for k in kinds)
        level = str(strength) if strength else ""
    values = {"area": _area_names(met), "kinds": "、".join(kinds), "level": level}
    summary = f"{_said(words)}（{_when(bulletin)}）"
    return Trigger(rule, _fill(rule, values), strength, tuple(met), summary)


# ---- words --------------------------------------------------------------------------------


def _fill(rule: Rule, values: dict[str, str]) -> dict[str, str]:
    return {
        key: _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)
        for key, text in rule.variables.items()
    }


def _area_names(areas: Iterable[AreaReport]) -> str:
    """The areas' names for {area}: joined with 、, cut with ほか to fit AREA_MAX."""
    names = list(dict.fromkeys(a.name for a in areas))
    text = names[0][:AREA_MAX]
    for n, name in enumerate(names[1:], start=1):
        longer = f"{text}、{name}"
        rest = len(names) - n - 1
        if len(longer) + (2 if rest else 0) > AREA_MAX:
            return f"{text[: AREA_MAX - 2]}ほか"
        text = longer
    return text


def _said(parts: Iterable[str]) -> str:
    words = list(parts)
    shown = "、".join(words[:SUMMARY_AREAS])
    more = len(words) - SUMMARY_AREAS
    return f"{shown} ほか{more}地域" if more > 0 else shown


def _when(bulletin: Bulletin) -> str:
    t = bulletin.report_at.astimezone(TOKYO)
    publisher = bulletin.publisher or bulletin.office
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M} {publisher}発表"
