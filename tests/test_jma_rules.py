"""Trigger rules (relay/jma/rules.py, the default relay/jma/kanazawa.yaml) and what a bulletin
meets (relay/jma/matching.py).

The table EXPECTED says, for every real document in the shared folder, which default rules it
meets — written from reading each file (what it says of 横浜金沢区 1410800, 神奈川県東部 360,
東京湾内湾 312, 相模湾・三浦半島 330, 横浜市 1410000 and its halves 1410011/1410012), not from
running the code."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.jma.bulletin import AreaReport, Bulletin
from relay.jma.matching import UNREPORTED_NOTE, Trigger, evacuation_level, match
from relay.jma.parsing import parse
from relay.jma.rules import DEFAULT_RULES, Rule, RulesError, load_rules
from tests.conftest import SHARED

JMA = SHARED / "jma"
FIXTURES = Path(__file__).parent / "fixtures" / "jma"
FEED = "weather-sample.xml"

# file -> the default rules it meets: (rule, strength, codes of the areas that matched).
EXPECTED: dict[str, list[tuple[str, int, list[str]]]] = {
    # Quakes: 横浜金沢区 3, 神奈川県東部 4 (the sample and its 訓練 twin) — below 5弱.
    "32-35_07_06_240613_VXSE53.xml": [],
    "32-35_01_03_240613_VXSE53.xml": [],
    # 震度速報: 神奈川県東部 4.
    "32-35_07_01_100915_VXSE51.xml": [],
    # 岩手・宮城 6強; 神奈川県東部 3, 横浜金沢区 2.
    "32-35_06_03_240613_VXSE53.xml": [],
    # 2011-03-11 震度速報: Kanagawa not listed.
    "32-39_11_01_120615_VXSE51.xml": [],
    # Hypocentre only, and cancels.
    "32-35_06_01_240613_VXSE52.xml": [],
    "32-35_06_02_100915_VXSE52.xml": [],
    "32-39_05_12_100915_VXSE53.xml": [],
    "20210217140847_0_VXSE52_010000.xml": [],
    # Real feed files elsewhere: 大阪府南部 1, 震度3 without Kanagawa, a quake abroad.
    "20210216071046_0_VXSE53_270000.xml": [],
    "20210217140808_0_VXSE51_010000.xml": [],
    "20230410231623_04156158_VXSE53.xml": [],
    # Tsunami 2011-03-11: 相模湾・三浦半島 津波注意報 (grade 1); 東京湾内湾 only 若干の海面変動.
    "32-39_11_02_250206_VTSE41.xml": [("tokyo-bay-tsunami", 1, ["330"])],
    "32-39_11_03_250206_VTSE51.xml": [("tokyo-bay-tsunami", 1, ["330"])],
    # 訓練: 相模湾・三浦半島 大津波警報 (3), 東京湾内湾 津波警報 — in the document's order.
    "32-39_12_07_250206_VTSE41.xml": [("tokyo-bay-tsunami", 3, ["330", "312"])],
    # 2011-03-13: 312 and 330 若干の海面変動 only; a cancel; real feeds with 330 若干 / elsewhere.
    "32-39_11_13_250206_VTSE41.xml": [],
    "38-39_03_01_210805_VTSE41.xml": [],
    "20231009072652_07314633_VTSE41.xml": [],
    "20220918154907_08013775_VTSE41.xml": [],
    # 横浜市 強風注意報・波浪注意報 only; other prefectures' 特別警報.
    "15_12_03_161130_VPWW54.xml": [],
    "15_12_01_161130_VPWW54.xml": [],
    "15_09_01_160628_VPWW53.xml": [],
    # 2026 format, 宗谷 and 島根.
    "15_16_03_241226_VPWW55.xml": [],
    "15_17_01_250630_VPWW56.xml": [],
    # 神奈川県 土砂: 小田原・真鶴・湯河原 発表; 横浜市北部/南部 なし. 福岡県.
    "17_04_01_250630_VXWW50.xml": [],
    "17_01_01_190529_VXWW50.xml": [],
}

# Our own documents (tests/fixtures/jma): the same, for what the shared ones do not show.
EXPECTED_FIXTURES: dict[str, list[tuple[str, int, list[str]]]] = {
    "vxse53_kanazawa_5-.xml": [("kanazawa-quake", 5, ["1410800"])],
    "vxse53_kanazawa_unreported.xml": [("kanazawa-quake", 5, ["1410800"])],
    "vxse53_kanazawa_only_unreported.xml": [("kanazawa-quake", 5, ["1410800"])],
    "vxse51_kanagawa_east_5+.xml": [("kanagawa-east-quake", 6, ["360"])],
    "vxse53_chiba_6-.xml": [],
    "vxww50_yokohama_south.xml": [("cliff-zone-landslide", 4, ["1410012"])],
    "vxww50_yokohama_north_new.xml": [],  # 北部 only; 南部 lifted
    "vxww50_chiba.xml": [],
    "vpww54_yokohama_special.xml": [("yokohama-special-warning", 5, ["1410000"])],
    "vpww56_yokohama_level4.xml": [("cliff-zone-landslide", 4, ["1410012"])],
    "vtse41_tokyo_bay_lifted.xml": [],
    "vxse43_eew.xml": [],
}


@pytest.fixture(scope="module")
def rules() -> tuple[Rule, ...]:
    return load_rules()


def triggers_of(path: Path, rules: tuple[Rule, ...]) -> list[Trigger]:
    return match(parse(path.read_bytes()), rules)


def summary_of(found: list[Trigger]) -> list[tuple[str, int, list[str]]]:
    return [(t.rule.name, t.strength, [a.code for a in t.areas]) for t in found]


# ---- every document -----------------------------------------------------------------------


@pytest.mark.skipif(not JMA.is_dir(), reason=f"the shared JMA documents are not here ({JMA})")
def test_the_table_covers_every_shared_document() -> None:
    present = {p.name for p in JMA.glob("*.xml")} - {FEED}
    assert present == set(EXPECTED), "add the new shared documents to EXPECTED"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_documents_meet_exactly_the_expected_rules(
    name: str, rules: tuple[Rule, ...]
) -> None:
    path = JMA / name
    if not path.is_file():
        pytest.skip(f"{path} is not in the shared folder")
    assert summary_of(triggers_of(path, rules)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_FIXTURES))
def test_our_documents_meet_exactly_the_expected_rules(name: str, rules: tuple[Rule, ...]) -> None:
    assert summary_of(triggers_of(FIXTURES / name, rules)) == EXPECTED_FIXTURES[name]


# ---- what a trigger carries ---------------------------------------------------------------


def test_kanazawa_at_5_lower_sends_the_safety_check_at_once(rules: tuple[Rule, ...]) -> None:
    (trigger,) = triggers_of(FIXTURES / "vxse53_kanazawa_5-.xml", rules)
    assert trigger.rule.action == "auto" and trigger.rule.template == "earthquake"
    assert trigger.rule.audience == "all"
    assert trigger.rule.questions == ("damage-report", "base-status", "safety-check")
    assert trigger.variables == {"intensity": "5弱", "area": "金沢区全域"}
    assert trigger.summary.splitlines() == [
        "横浜金沢区 震度5弱（2024年6月13日 10:20 気象庁発表）",
        "震源 東京湾 M5.8",
    ]


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("vxse53_kanazawa_unreported.xml", f"横浜金沢区 震度4、{UNREPORTED_NOTE}"),
        ("vxse53_kanazawa_only_unreported.xml", f"横浜金沢区 {UNREPORTED_NOTE}"),
    ],
)
def test_an_unreported_station_in_kanazawa_counts_as_possibly_5_lower(
    name: str, said: str, rules: tuple[Rule, ...]
) -> None:
    (trigger,) = triggers_of(FIXTURES / name, rules)
    assert trigger.rule.name == "kanazawa-quake" and trigger.rule.action == "auto"
    assert trigger.variables["intensity"] == "5弱"
    first = trigger.summary.splitlines()[0]
    assert first.startswith(said)
    assert "震度５弱以上未入電の観測点あり（震度5弱以上の可能性）" in first


def test_an_unreported_station_does_not_count_as_more_than_5_lower(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        DEFAULT_RULES.read_text(encoding="utf-8").replace(
            "min_intensity: 5弱", "min_intensity: 5強"
        ),
        encoding="utf-8",
    )
    strict = load_rules(path)
    assert triggers_of(FIXTURES / "vxse53_kanazawa_unreported.xml", strict) == []
    assert len(triggers_of(FIXTURES / "vxse53_kanazawa_5-.xml", strict)) == 0


def test_the_intensity_flash_drafts_for_kanagawa_east(rules: tuple[Rule, ...]) -> None:
    (trigger,) = triggers_of(FIXTURES / "vxse51_kanagawa_east_5+.xml", rules)
    assert trigger.rule.action == "draft"
    assert trigger.variables == {"intensity": "5強", "area": "神奈川県東部"}
    assert trigger.summary == "神奈川県東部 震度5強（2024年6月13日 10:17 気象庁発表）"


def test_a_landslide_warning_for_kanazawas_half_drafts_level_4_to_the_cliffs(
    rules: tuple[Rule, ...],
) -> None:
    for name in ("vxww50_yokohama_south.xml", "vpww56_yokohama_level4.xml"):
        (trigger,) = triggers_of(FIXTURES / name, rules)
        assert trigger.rule.name == "cliff-zone-landslide" and trigger.rule.action == "draft"
        assert trigger.rule.audience == "tag:cliff-zone" and trigger.rule.template == "evacuation"
        assert trigger.variables["level"] == "4"
        assert [a.name for a in trigger.areas] == ["横浜市南部"]
    (old,) = triggers_of(FIXTURES / "vxww50_yokohama_south.xml", rules)
    assert old.summary == "横浜市南部 土砂災害警戒情報（2025年7月1日 17:10 横浜地方気象台発表）"


def test_a_special_warning_for_yokohama_drafts_level_5(rules: tuple[Rule, ...]) -> None:
    (trigger,) = triggers_of(FIXTURES / "vpww54_yokohama_special.xml", rules)
    assert trigger.variables == {
        "level": "5",
        "area": "金沢区全域",
        "shelters": "各避難場所",
    }
    assert trigger.summary.startswith("横浜市 大雨特別警報（2025年9月1日 15:10")


@pytest.mark.skipif(not JMA.is_dir(), reason=f"the shared JMA documents are not here ({JMA})")
def test_a_tsunami_draft_names_the_areas_and_kinds(rules: tuple[Rule, ...]) -> None:
    (trigger,) = triggers_of(JMA / "32-39_12_07_250206_VTSE41.xml", rules)
    assert trigger.rule.template == "tsunami" and trigger.rule.action == "draft"
    assert trigger.variables == {"area": "金沢区沿岸部"}
    assert trigger.summary == (
        "相模湾・三浦半島 大津波警報、東京湾内湾 津波警報（2016年9月1日 07:26 気象庁発表）"
    )


def test_another_prefecture_meets_nothing(rules: tuple[Rule, ...]) -> None:
    for name in ("vxse53_chiba_6-.xml", "vxww50_chiba.xml"):
        assert triggers_of(FIXTURES / name, rules) == []


def test_a_cancel_meets_nothing_even_with_areas(rules: tuple[Rule, ...]) -> None:
    quake = parse((FIXTURES / "vxse53_kanazawa_5-.xml").read_bytes())
    assert match(quake, rules)
    assert match(replace(quake, info_type="取消"), rules) == []


def test_status_is_not_matchings_business(rules: tuple[Rule, ...]) -> None:
    quake = parse((FIXTURES / "vxse53_kanazawa_5-.xml").read_bytes())
    for status in ("訓練", "試験"):
        assert [t.rule.name for t in match(replace(quake, status=status), rules)] == [
            "kanazawa-quake"
        ]


def test_stations_are_never_matched_by_code(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - {name: s, kinds: [intensity], area_codes: ['1410840'], min_intensity: 1,\n"
        "     template: earthquake, variables: {intensity: '{intensity}', area: x},\n"
        "     audience: all}\n",
        encoding="utf-8",
    )
    assert triggers_of(FIXTURES / "vxse53_kanazawa_5-.xml", load_rules(path)) == []


def test_placeholders_are_filled_and_area_names_fit_the_template(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        """rules:
  - name: coast
    kinds: [tsunami]
    area_codes: ["312", "330", "210", "220", "250", "101"]
    warnings: [大津波警報, 大津波警報：発表, 津波警報, 津波注意報]
    template: tsunami
    variables: {area: "{area}"}
    audience: all
  - name: rain
    kinds: [warning]
    area_codes: ["1410000"]
    warnings: [洪水警報, 大雨特別警報]
    template: evacuation
    variables: {level: "{level}", area: "{kinds}", shelters: [六浦小学校, 金沢小学校]}
    audience: kind:disaster_base
""",
        encoding="utf-8",
    )
    rules = load_rules(path)
    (rain,) = triggers_of(FIXTURES / "vpww54_yokohama_special.xml", rules)
    assert rain.variables == {
        "level": "5",
        "area": "大雨特別警報、洪水警報",
        "shelters": "六浦小学校、金沢小学校",
    }
    tsunami = parse((FIXTURES / "vtse41_tokyo_bay_lifted.xml").read_bytes())
    coasts = [("210", "岩手県"), ("220", "宮城県"), ("250", "福島県"), ("312", "東京湾内湾")]
    coasts += [("330", "相模湾・三浦半島"), ("101", "北海道太平洋沿岸中部")]
    warned = replace(
        tsunami,
        areas=tuple(AreaReport(c, n, "tsunami", kinds=("大津波警報：発表",)) for c, n in coasts),
    )
    (coast,) = match(warned, rules)
    assert coast.strength == 3
    # The six names joined are 37 characters: the last one gives way to ほか (30 at most).
    assert coast.variables["area"] == "岩手県、宮城県、福島県、東京湾内湾、相模湾・三浦半島ほか"
    assert len(coast.variables["area"]) <= 30


@pytest.mark.parametrize(
    ("kind", "level"),
    [
        ("土砂災害警戒情報", 4),
        ("レベル４土砂災害危険警報", 4),
        ("レベル5大雨特別警報", 5),
        ("大雨特別警報", 5),
        ("暴風特別警報", 5),
        ("高潮特別警報", 4),
        ("高潮警報", 4),
        ("大雨警報", 3),
        ("レベル３大雨警報", 3),
        ("大雨注意報", 2),
        ("強風注意報", 2),
        ("なし", 0),
    ],
)
def test_evacuation_level_of_a_kind(kind: str, level: int) -> None:
    assert evacuation_level(kind) == level


def test_strength_orders_within_a_rule(rules: tuple[Rule, ...]) -> None:
    quake = parse((FIXTURES / "vxse53_kanazawa_5-.xml").read_bytes())

    def at(code: str) -> int:
        kanazawa = AreaReport("1410800", "横浜金沢区", "city", intensity=code)
        (trigger,) = match(replace(quake, areas=(kanazawa,)), rules)
        return trigger.strength

    assert [at(c) for c in ("5-", "5+", "6-", "6+", "7")] == [5, 6, 7, 8, 9]


# ---- the default rules --------------------------------------------------------------------


def test_the_default_rules(rules: tuple[Rule, ...]) -> None:
    by_name = {r.name: r for r in rules}
    assert list(by_name) == [
        "kanagawa-east-quake",
        "kanazawa-quake",
        "tokyo-bay-tsunami",
        "cliff-zone-landslide",
        "yokohama-special-warning",
    ]
    assert [r.name for r in rules if r.action == "auto"] == ["kanazawa-quake"]
    assert by_name["kanazawa-quake"].area_codes == ("1410800",)
    assert by_name["kanazawa-quake"].min_intensity == "5-"
    assert by_name["kanagawa-east-quake"].area_codes == ("360",)
    assert by_name["kanagawa-east-quake"].titles == ("震度速報",)
    assert set(by_name["tokyo-bay-tsunami"].area_codes) == {"312", "330"}
    landslide = by_name["cliff-zone-landslide"]
    assert "1410012" in landslide.area_codes and "1410011" not in landslide.area_codes
    assert {"土砂災害警戒情報", "レベル４土砂災害危険警報"} <= set(landslide.warnings)
    assert all(not r.exercise for r in rules)
    assert load_rules(DEFAULT_RULES) == rules == load_rules(None)


# ---- an operator's mistakes ---------------------------------------------------------------

GOOD = """rules:
  - name: quake
    kinds: [intensity]
    area_codes: ["1410800"]
    min_intensity: 5弱
    template: earthquake
    variables:
      intensity: "{intensity}"
      area: 金沢区
    audience: all
    channels: [sms, email]
    mode: cascade
    action: draft
    questions: [damage-report]
    ack_within: 20m
    exercise: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "triggers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_operator_file_loads(tmp_path: Path) -> None:
    (rule,) = load_rules(write(tmp_path, GOOD))
    assert rule.channels == ("sms", "email") and rule.ack_within == timedelta(minutes=20)
    assert rule.variables == {"intensity": "{intensity}", "area": "金沢区"}


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("    exercise: false\n", "    exercise: false\n    colour: red\n", "colour"),
        ("template: earthquake", "template: quake", "template"),
        ("audience: all", "audience: tagg:cliff-zone", "audience"),
        ("audience: all", "audience: kind:castle", "audience"),
        ("questions: [damage-report]", "questions: [damage]", "questions"),
        ("min_intensity: 5弱", "min_intensity: 8", "min_intensity"),
        ("min_intensity: 5弱", "min_intensity: 5やや強", "min_intensity"),
        ("action: draft", "action: send", "action"),
        ("channels: [sms, email]", "channels: [sms, fax]", "channels"),
        ('area_codes: ["1410800"]', "area_codes: []", "area_codes"),
        ('area_codes: ["1410800"]', "area_codes: [金沢区]", "area_codes"),
        ("area: 金沢区", 'area: "{city}"', "variables.area"),
        ("area: 金沢区", 'area: "{level}"', "variables.area"),
        ("area: 金沢区", 'area: "金沢{区"', "variables.area"),
        ("area: 金沢区", "area: " + "金" * 31, "variables.area"),
        ("area: 金沢区", "area: 金沢区\n      level: '4'", "variables.level"),
        ('      intensity: "{intensity}"\n', "", "variables.intensity"),
        ("kinds: [intensity]", "kinds: [quake]", "kinds"),
        ("mode: cascade", "mode: loud", "mode"),
        ("ack_within: 20m", "ack_within: soon", "ack_within"),
        ("ack_within: 20m", "ack_within: 0", "ack_within"),
        ("exercise: false", "exercise: maybe", "exercise"),
        ("    min_intensity: 5弱\n", "", "min_intensity"),
        ("    audience: all\n", "", "audience"),
        ("kinds: [intensity]", "kinds: [intensity, tsunami]", "warnings"),
        ("    exercise: false\n", "    exercise: false\n    warnings: [津波警報]\n", "warnings"),
        ("name: quake", "name: ''", "name"),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RulesError) as refused:
        load_rules(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: rule ")
    assert f": {field}: " in message
    assert "\n" not in message


def test_file_level_mistakes_are_named(tmp_path: Path) -> None:
    cases = {
        "rule: []\n": "one key, rules",
        "rules: []\n": "at least one rule",
        "rules: [\n": "not valid YAML",
        "rules:\n  - just text\n": "rule 1: a rule is a mapping",
        GOOD + GOOD.removeprefix("rules:\n"): "rule 'quake': name: used by two rules",
        GOOD + "    audience: all\n": "'audience' is written twice",
    }
    for text, said in cases.items():
        with pytest.raises(RulesError, match=said):
            load_rules(write(tmp_path, text))
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    (tmp_path / "big.yaml").write_bytes(b"#" * 300_000)
    with pytest.raises(RulesError, match="larger than"):
        load_rules(tmp_path / "big.yaml")


def test_a_bulletin_made_by_hand_matches_like_a_parsed_one(rules: tuple[Rule, ...]) -> None:
    now = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)
    bulletin = Bulletin(
        title="土砂災害警戒情報",
        office="横浜地方気象台",
        status="通常",
        info_type="発表",
        info_kind="土砂災害警戒情報",
        event_id="神奈川県土砂災害警戒情報",
        serial="3",
        report_at=now,
        sent_at=now,
        kind="landslide",
        headline="",
        areas=(
            AreaReport("1410011", "横浜市北部", "municipality", kinds=("土砂災害警戒情報",)),
            AreaReport("1410012", "横浜市南部", "municipality", lifted=("土砂災害警戒情報",)),
        ),
    )
    assert match(bulletin, rules) == []  # 北部 only, and 南部 lifted: not Kanazawa's half
    south = replace(
        bulletin,
        areas=(AreaReport("1410012", "横浜市南部", "municipality", kinds=("土砂災害警戒情報",)),),
    )
    (trigger,) = match(south, rules)
    assert trigger.summary == "横浜市南部 土砂災害警戒情報（2026年5月1日 10:00 横浜地方気象台発表）"


def test_every_default_rule_sends_a_one_segment_japanese_sms() -> None:
    """With the bulletins that trigger them (their variables filled in as the bulletin fills
    them) and a public URL of 30 characters, the first Japanese SMS of each default rule's
    real alert is one segment, as the built-in templates promise (issue 15)."""
    from relay.alerts.sms_length import sms_length_notes
    from relay.config import load_settings
    from relay.jma.bulletin import AreaReport

    settings = load_settings({"RELAY_PUBLIC_URL": "https://relay.kanazawa.city.jp"})
    area = {
        "intensity": AreaReport("1410800", "横浜金沢区", "city", intensity="6+"),
        "tsunami": AreaReport("330", "相模湾・三浦半島", "tsunami", kinds=("大津波警報",)),
        "landslide": AreaReport(
            "1410012", "横浜市南部", "municipality", kinds=("レベル４土砂災害危険警報",)
        ),
    }
    for rule in load_rules():
        report = area.get(rule.kinds[0])
        if rule.kinds[0] == "warning":
            report = AreaReport("1410000", "横浜市", "municipality", kinds=(rule.warnings[0],))
        if rule.area_codes[0] == "360":
            report = AreaReport("360", "神奈川県東部", "area", intensity="6+")
        assert report is not None, rule.name
        variables = {k: v.format(intensity="6強", area=report.name, level="5", kinds="")
                     for k, v in rule.variables.items()}  # fmt: skip
        notes = [n.en() for n in sms_length_notes(settings, rule.template, variables, "Actual")]
        assert not [n for n in notes if n.startswith("ja ")], (rule.name, notes)
