"""Reading JMA bulletins (relay/jma/parsing.py): every real document in the shared folder
parses, the fields read are the ones in the files (values checked by reading the XML), and
hostile or foreign documents are refused with a one-line reason.

The real documents are read where they are (SHARED/jma, see its README and MANIFEST); the
small documents of our own making are in tests/fixtures/jma/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.jma.bulletin import INTENSITIES, INTENSITY_JA, AreaReport, Bulletin
from relay.jma.parsing import MAX_DOCUMENT_BYTES, JmaDocumentError, kind_of, parse
from tests.conftest import SHARED

JMA = SHARED / "jma"
FIXTURES = Path(__file__).parent / "fixtures" / "jma"
FEED = "weather-sample.xml"  # an Atom feed, not a Report
JST = timezone(timedelta(hours=9))

needs_shared = pytest.mark.skipif(
    not JMA.is_dir(), reason=f"the shared JMA documents are not here ({JMA})"
)


def shared(name: str) -> Bulletin:
    path = JMA / name
    if not path.is_file():
        pytest.skip(f"{path} is not in the shared folder")
    return parse(path.read_bytes())


def fixture(name: str) -> Bulletin:
    return parse((FIXTURES / name).read_bytes())


def area(bulletin: Bulletin, code: str, scope: str | None = None) -> AreaReport:
    found = [a for a in bulletin.areas if a.code == code and scope in (None, a.scope)]
    assert len(found) == 1, f"{code} ({scope}) found {len(found)} times"
    return found[0]


def shared_documents() -> list[str]:
    return sorted(p.name for p in JMA.glob("*.xml")) if JMA.is_dir() else []


# ---- every real document ------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name", [n for n in shared_documents() if n != FEED] or ["-"])
def test_every_shared_report_parses(name: str) -> None:
    bulletin = shared(name)
    assert bulletin.title and bulletin.office
    assert bulletin.status in ("通常", "訓練", "試験")
    assert bulletin.info_type in ("発表", "訂正", "取消")
    assert bulletin.report_at.tzinfo is not None and bulletin.sent_at.tzinfo is not None
    # The two times of one document are minutes apart at most (one JST, one UTC).
    assert abs(bulletin.report_at - bulletin.sent_at) < timedelta(hours=1)
    assert bulletin.kind in ("intensity", "hypocentre", "tsunami", "warning", "landslide")
    for report in bulletin.areas:
        assert report.code.isdigit() and report.name
        assert report.intensity is None or report.intensity in INTENSITIES
        assert not {"解除", "なし"} & set(report.kinds)
    if bulletin.info_type == "取消":
        assert bulletin.areas == ()


@needs_shared
def test_the_atom_feed_is_refused_as_not_a_report() -> None:
    with pytest.raises(JmaDocumentError, match="Atom feed"):
        parse((JMA / FEED).read_bytes())


# ---- fields, as read in the files ---------------------------------------------------------


@needs_shared
def test_a_quake_bulletin_reads_kanazawa_and_kanagawa_east() -> None:
    b = shared("32-35_07_06_240613_VXSE53.xml")
    assert (b.title, b.office, b.status, b.info_type) == (
        "震源・震度に関する情報",
        "気象庁本庁",
        "通常",
        "発表",
    )
    assert (b.kind, b.event_id, b.serial, b.info_kind) == (
        "intensity",
        "20090811050711",
        "1",
        "地震情報",
    )
    assert b.report_at == datetime(2009, 8, 11, 5, 13, tzinfo=JST)
    assert b.sent_at == datetime(2009, 8, 10, 20, 13, 14, tzinfo=UTC)
    assert b.headline == "１１日０５時０７分ころ、地震がありました。"
    assert b.hypocentre == "駿河湾 M6.6"
    assert b.series() == ("震源・震度に関する情報", "気象庁本庁", "通常", "20090811050711")
    kanazawa = area(b, "1410800")
    assert (kanazawa.name, kanazawa.scope, kanazawa.intensity) == ("横浜金沢区", "city", "3")
    assert not kanazawa.unreported
    assert area(b, "1410840").intensity == "3"  # 横浜金沢区白帆＊, a station
    assert area(b, "1410840").scope == "station"
    east = area(b, "360")
    assert (east.name, east.scope, east.intensity) == ("神奈川県東部", "area", "4")
    assert area(b, "14", "pref").intensity == "4"
    assert "津波警報等（警報あるいは注意報）を発表中です。" in b.text


@needs_shared
def test_a_city_with_an_unreported_station_is_marked_unreported() -> None:
    b = shared("32-35_07_06_240613_VXSE53.xml")
    # <City><Name>藤枝市</Name>…<MaxInt>4</MaxInt><Condition>震度５弱以上未入電</Condition>
    fujieda = area(b, "2221400")
    assert (fujieda.intensity, fujieda.unreported) == ("4", True)
    station = area(b, "2221431")  # 藤枝市岡出山＊: <Int>震度５弱以上未入電</Int>
    assert (station.intensity, station.unreported) == (None, True)
    assert area(b, "2221430").unreported is False  # 藤枝市瀬戸新屋＊, 4
    assert area(b, "442", "area").unreported  # 静岡県中部 holds 藤枝市
    assert area(b, "1410800").unreported is False


@needs_shared
def test_a_city_whose_stations_are_all_unreported_has_no_intensity() -> None:
    b = shared("32-35_06_03_240613_VXSE53.xml")
    # <City><Name>金ケ崎町</Name><Code>0338100</Code><Condition>震度５弱以上未入電</Condition>
    kanegasaki = area(b, "0338100")
    assert (kanegasaki.name, kanegasaki.intensity, kanegasaki.unreported) == (
        "金ケ崎町",
        None,
        True,
    )
    assert area(b, "1410800").intensity == "2" and area(b, "360", "area").intensity == "3"


@needs_shared
def test_training_and_cancel_bulletins() -> None:
    drill = shared("32-35_01_03_240613_VXSE53.xml")
    assert drill.status == "訓練" and drill.hypocentre == "駿河湾 M5.9"
    assert area(drill, "1410800").intensity == "3" and area(drill, "360").intensity == "4"
    cancel = shared("32-35_06_02_100915_VXSE52.xml")
    assert (cancel.info_type, cancel.kind, cancel.areas) == ("取消", "hypocentre", ())
    assert cancel.event_id == "20080614084350"
    assert "取り消します" in cancel.text


@needs_shared
def test_the_intensity_flash_gives_areas_only() -> None:
    b = shared("32-35_07_01_100915_VXSE51.xml")
    assert (b.title, b.kind, b.serial) == ("震度速報", "intensity", "")
    assert {a.scope for a in b.areas} == {"pref", "area"}
    assert area(b, "360").intensity == "4" and area(b, "442").intensity == "6-"
    assert b.hypocentre == ""


@needs_shared
def test_a_quake_abroad_has_no_intensities() -> None:
    b = shared("20230410231623_04156158_VXSE53.xml")
    assert (b.kind, b.head_title, b.areas) == ("intensity", "遠地地震に関する情報", ())
    assert b.hypocentre == "カムチャツカ半島付近 M不明"


@needs_shared
def test_tsunami_forecast_areas_and_kinds() -> None:
    b = shared("32-39_11_02_250206_VTSE41.xml")
    assert b.kind == "tsunami" and b.title == "津波警報・注意報・予報a"
    assert area(b, "330").name == "相模湾・三浦半島"
    assert area(b, "330").kinds == ("津波注意報",)
    assert area(b, "312").name == "東京湾内湾"
    assert area(b, "312").kinds == ("津波予報（若干の海面変動）",)
    assert area(b, "210").kinds == ("大津波警報：発表",)  # 岩手県
    assert {a.scope for a in b.areas} == {"tsunami"}

    drill = shared("32-39_12_07_250206_VTSE41.xml")
    assert drill.status == "訓練"
    assert area(drill, "330").kinds == ("大津波警報",)
    assert area(drill, "312").kinds == ("津波警報",)

    info = shared("32-39_11_03_250206_VTSE51.xml")
    assert (info.kind, info.title) == ("tsunami", "津波情報a")
    assert area(info, "330").kinds == ("津波注意報",)

    cancel = shared("38-39_03_01_210805_VTSE41.xml")
    assert (cancel.info_type, cancel.areas) == ("取消", ())


@needs_shared
def test_a_lifted_tsunami_advisory() -> None:
    b = shared("32-39_11_13_250206_VTSE41.xml")
    # 312 and 330 were 若干の海面変動 before and are now: nothing lifted there.
    assert area(b, "312").kinds == ("津波予報（若干の海面変動）",) and area(b, "312").lifted == ()
    lifted = [a for a in b.areas if a.lifted]
    assert lifted and all(a.lifted == ("津波注意報",) for a in lifted)
    ours = fixture("vtse41_tokyo_bay_lifted.xml")
    assert area(ours, "312").lifted == ("津波注意報",)
    assert area(ours, "330").kinds == () and area(ours, "330").lifted == ("津波注意報",)


@needs_shared
def test_the_2025_landslide_sample_splits_yokohama_and_uses_the_new_wording() -> None:
    b = shared("17_04_01_250630_VXWW50.xml")
    assert (b.kind, b.title, b.office) == ("landslide", "土砂災害警戒情報", "横浜地方気象台")
    assert b.head_title == "神奈川県レベル４土砂災害危険警報"
    assert (b.event_id, b.serial) == ("神奈川県土砂災害警戒情報", "1")
    north, south = area(b, "1410011"), area(b, "1410012")
    assert (north.name, north.scope, north.kinds) == ("横浜市北部", "municipality", ())
    assert (south.name, south.scope, south.kinds) == ("横浜市南部", "municipality", ())
    assert area(b, "1420600").kinds == ("レベル４土砂災害危険警報",)  # 小田原市, 警戒 発表
    assert [a.name for a in b.areas if a.kinds] == ["小田原市", "真鶴町", "湯河原町"]


@needs_shared
def test_the_old_landslide_bulletin_in_force_and_lifted() -> None:
    b = shared("17_01_01_190529_VXWW50.xml")
    assert area(b, "4010000").kinds == ("土砂災害警戒情報",)  # 北九州市 警戒 継続
    fukuoka = area(b, "4013000")  # 福岡市 <Name>解除</Name><Status>解除</Status>
    assert (fukuoka.kinds, fukuoka.lifted) == ((), ("土砂災害警戒情報",))
    assert area(b, "4064700").kinds == () and area(b, "4064700").lifted == ()  # 築上町 なし


@needs_shared
def test_warnings_by_municipality_old_and_2026_format() -> None:
    kanagawa = shared("15_12_03_161130_VPWW54.xml")
    assert (kanagawa.kind, kanagawa.office) == ("warning", "横浜地方気象台")
    yokohama = area(kanagawa, "1410000")
    assert (yokohama.name, yokohama.scope) == ("横浜市", "municipality")
    assert yokohama.kinds == ("強風注意報", "波浪注意報")

    wakayama = shared("15_09_01_160628_VPWW53.xml")
    assert "大雨特別警報" in area(wakayama, "3020100").kinds  # 和歌山市

    soya = shared("15_16_03_241226_VPWW55.xml")
    assert soya.title == "気象警報・注意報（Ｒ０６）（大雨）" and soya.kind == "warning"
    assert area(soya, "0121400").kinds == ("レベル４大雨危険警報",)  # 稚内市
    assert area(soya, "0151100").kinds == ("レベル３大雨警報",)  # 猿払村

    shimane = shared("15_17_01_250630_VPWW56.xml")
    assert area(shimane, "3220900").kinds == ("レベル４土砂災害危険警報",)  # 雲南市


def test_warning_statuses_in_force_lifted_and_none() -> None:
    b = fixture("vpww54_yokohama_special.xml")
    yokohama = area(b, "1410000")
    assert yokohama.kinds == ("大雨特別警報", "洪水警報")  # 発表, 継続
    assert yokohama.lifted == ("波浪警報",)  # 解除
    assert area(b, "1413000").kinds == ("大雨警報",)  # 特別警報から警報: in force
    assert area(b, "1440200").kinds == ()  # 解除 / 発表警報・注意報はなし
    assert [a.code for a in b.areas] == ["1410000", "1413000", "1440200"]  # 市町村等 only


def test_our_kanazawa_documents() -> None:
    quake = fixture("vxse53_kanazawa_5-.xml")
    assert area(quake, "1410800").intensity == "5-"
    assert INTENSITY_JA[area(quake, "1410800").intensity or ""] == "5弱"
    assert quake.publisher == "気象庁" and quake.hypocentre == "東京湾 M5.8"
    only = fixture("vxse53_kanazawa_only_unreported.xml")
    kanazawa = area(only, "1410800")
    assert (kanazawa.intensity, kanazawa.unreported) == (None, True)
    # The city's own <Condition> says so, even without its stations listed.
    said = (FIXTURES / "vxse53_kanazawa_unreported.xml").read_text(encoding="utf-8")
    lines = [line for line in said.splitlines() if "<IntensityStation>" not in line]
    condition_only = area(parse("\n".join(lines).encode()), "1410800")
    assert (condition_only.intensity, condition_only.unreported) == ("4", True)
    landslide = fixture("vxww50_yokohama_north_new.xml")
    assert area(landslide, "1410011").kinds == ("レベル４土砂災害危険警報",)
    assert area(landslide, "1410012").lifted == ("レベル４土砂災害危険警報",)


# ---- kinds --------------------------------------------------------------------------------


def test_an_unknown_report_type_is_kind_unknown_not_an_error() -> None:
    eew = fixture("vxse43_eew.xml")
    assert (eew.kind, eew.title, eew.areas) == ("unknown", "緊急地震速報（警報）", ())
    assert eew.event_id == "20240613101500" and eew.hypocentre == "東京湾 M5.8"


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("震度速報", "intensity"),
        ("震源・震度に関する情報", "intensity"),
        ("震源に関する情報", "hypocentre"),
        ("津波警報・注意報・予報a", "tsunami"),
        ("津波情報a", "tsunami"),
        ("気象特別警報・警報・注意報", "warning"),
        ("気象警報・注意報（Ｈ２７）", "warning"),
        ("気象警報・注意報（Ｒ０６）（土砂）", "warning"),
        ("土砂災害警戒情報", "landslide"),
        ("レベル４土砂災害危険警報", "landslide"),
        ("緊急地震速報（警報）", "unknown"),
        ("府県天気予報（Ｒ１）", "unknown"),
        ("沖合の津波観測に関する情報", "unknown"),
        ("", "unknown"),
    ],
)
def test_kind_by_title(title: str, kind: str) -> None:
    assert kind_of(title) == kind


def test_odd_documents_parse_without_error() -> None:
    odd = (FIXTURES / "vxse53_kanazawa_5-.xml").read_bytes()
    # A type JMA might add, with an intensity-like body: unknown, no areas.
    b = parse(
        odd.replace("震源・震度に関する情報".encode(), "長周期地震動に関する観測情報".encode())
    )
    assert (b.kind, b.areas) == ("unknown", ())
    # No EventID, no Serial, no Body at all.
    bare = odd.replace(b"<EventID>20240613101500</EventID>", b"").replace(
        b"<Serial>1</Serial>", b""
    )
    bare = bare[: bare.index(b"<Body")] + b"</Report>\n"
    b = parse(bare)
    assert (b.event_id, b.serial, b.areas, b.kind) == ("", "", (), "intensity")


# ---- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("billion_laughs.xml", "DTD or entity"),
        ("external_entity.xml", "DTD or entity"),
        ("dtd_only.xml", "DTD or entity"),
        ("not_a_report.xml", "not a JMA Report"),
        ("report_wrong_namespace.xml", "not a JMA Report"),
    ],
)
def test_hostile_and_foreign_documents_are_refused(name: str, why: str) -> None:
    with pytest.raises(JmaDocumentError, match=why) as refused:
        fixture(name)
    assert "\n" not in str(refused.value)
    assert "root:" not in str(refused.value)  # the external entity was never read


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"this is not xml", "not XML"),
        (b"<Report xmlns='http://xml.kishou.go.jp/jmaxml1/'><Control>", "not XML"),
        (b"\xff\xfe\x00<\x00R", "not XML"),
        (b"<Report xmlns='http://xml.kishou.go.jp/jmaxml1/'/>", "no Control"),
    ],
)
def test_not_xml_or_not_a_report(data: bytes, why: str) -> None:
    with pytest.raises(JmaDocumentError, match=why):
        parse(data)


def test_an_oversize_document_is_refused_before_parsing() -> None:
    real = (FIXTURES / "vxse53_kanazawa_5-.xml").read_bytes()
    padding = b"<!-- " + b"x" * MAX_DOCUMENT_BYTES + b" -->"
    big = real.replace(b"<Control>", padding + b"<Control>", 1)
    with pytest.raises(JmaDocumentError, match="too large"):
        parse(big)
    assert parse(real).kind == "intensity"  # the same document at its own size is fine


def test_a_document_without_any_time_is_refused() -> None:
    real = (FIXTURES / "vxse51_kanagawa_east_5+.xml").read_bytes()
    timeless = real.replace(b"2024-06-13T01:17:10Z", b"soon").replace(
        b"2024-06-13T10:17:00+09:00", b"later"
    )
    with pytest.raises(JmaDocumentError, match="time"):
        parse(timeless)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000), junk=st.binary(max_size=20))
def test_damaged_documents_parse_or_are_refused_never_crash(cut: int, junk: bytes) -> None:
    real = (FIXTURES / "vxse53_kanazawa_unreported.xml").read_bytes()
    damaged = real[:cut] + junk + real[cut + len(junk) :]
    try:
        parse(damaged)
    except JmaDocumentError as exc:
        assert "\n" not in str(exc)
