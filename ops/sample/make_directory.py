"""Generate the synthetic Kanazawa Ward directory (ops/sample/kanazawa-directory.csv).

Deterministic (fixed seed): running it again writes the same file. Every name is synthetic,
drawn from common Japanese surnames and given names; no real person is described.

Phone numbers come from blocks used here as fictional: mobiles 090-9999-xxxx and
080-9999-xxxx, landlines 045-799-xxxx, IP phones 050-9999-xxxx; emails use the reserved
domain example.jp. The demo and tests send only to the carrier simulator.

Usage: python ops/sample/make_directory.py [OUT.csv]
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

SEED = 2020
OUT = Path(__file__).with_name("kanazawa-directory.csv")
COLUMNS = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language"
).split(",")

# 13 district federations (地区連合町内会), named after areas of the ward.
DISTRICTS = [
    ("kanazawa", "金沢"), ("mutsuura", "六浦"), ("mutsuura-east", "六浦東"),
    ("kamariya", "釜利谷"), ("tomioka-west", "富岡西"), ("tomioka-east", "富岡東"),
    ("noukendai", "能見台"), ("namiki", "並木"), ("nishishiba", "西柴"), ("daido", "大道"),
    ("deiki", "泥亀"), ("shiba", "柴シーサイド"), ("nojima", "野島"),
]  # fmt: skip
SURNAMES = (
    "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 "
    "斎藤 清水 山崎 森 池田 橋本 阿部 石川 山下 中島 石井 小川 前田 岡田 長谷川 藤田 後藤 近藤"
).split()
GIVEN = (
    "一郎 健二 正男 茂 博 誠 和夫 勝 清 実 隆 弘 豊 進 明 修 幸子 和子 洋子 恵子 京子 "
    "節子 美智子 久美子 由美子 直子 智子 陽子 裕子 真理子"
).split()
ASSOCIATION_SUFFIXES = ["一丁目", "二丁目", "三丁目", "四丁目", "五丁目", "北", "南", "東", "西",
                        "中央", "台", "町", "ヶ丘", "団地", "ハイツ"]  # fmt: skip
FACILITIES = [
    "金沢地区センター", "釜利谷地区センター", "富岡地区センター", "能見台地区センター",
    "六浦地区センター", "金沢図書館", "金沢スポーツセンター", "金沢公会堂",
    "西柴コミュニティハウス", "並木コミュニティハウス", "六浦コミュニティハウス",
    "富岡コミュニティハウス", "釜利谷コミュニティハウス", "能見台コミュニティハウス",
    "金沢区社会福祉協議会", "金沢土木事務所", "金沢消防署", "金沢警察署連絡室",
    "金沢区老人福祉センター", "金沢区こども家庭支援センター",
]  # fmt: skip


class Numbers:
    """Hands out distinct fictional numbers and addresses."""

    def __init__(self) -> None:
        self.mobile = 0
        self.landline = 0

    def next_mobile(self) -> str:
        self.mobile += 1
        prefix = "090" if self.mobile <= 9000 else "080"
        return f"{prefix}-9999-{self.mobile % 9000:04d}"

    def next_landline(self) -> str:
        self.landline += 1
        return f"045-799-{self.landline:04d}"


def person(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"


def build(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    numbers = Numbers()

    def org_rows(
        code: str, name: str, kind: str, district: str, parent: str, tags: str,
        roles: list[str], *, elderly: bool = False, facility: bool = False,
    ) -> None:  # fmt: skip
        for priority, role in enumerate(roles, start=1):
            reach = rng.random()
            mobile = landline = email = ""
            if facility:
                # Facilities: a desk landline and a shared mailbox, sometimes a duty mobile.
                landline = numbers.next_landline()
                email = f"{code}-{priority}@example.jp"
                if reach < 0.4:
                    mobile = numbers.next_mobile()
                if reach > 0.9:
                    landline = ""  # email-only facility desk
            elif elderly and reach < 0.25:
                landline = numbers.next_landline()  # elderly leader: home landline only
            elif reach < 0.55:
                mobile = numbers.next_mobile()
            elif reach < 0.85:
                mobile, landline = numbers.next_mobile(), numbers.next_landline()
                email = f"{code}-{priority}@example.jp"
            elif reach < 0.93:
                mobile, email = numbers.next_mobile(), f"{code}-{priority}@example.jp"
            else:
                email = f"{code}-{priority}@example.jp"
            lang_roll = rng.random()
            language = "en" if lang_roll < 0.04 else "ja-easy" if lang_roll < 0.08 else "ja"
            rows.append({
                "org_code": code, "org_name": name, "org_kind": kind, "district": district,
                "parent_code": parent, "tags": tags, "contact_name": person(rng), "role": role,
                "priority": str(priority), "mobile": mobile, "landline": landline,
                "email": email, "language": language,
            })  # fmt: skip

    org_rows("ward-office", "金沢区役所 総務課危機管理担当", "ward_office", "", "", "",
             ["危機管理担当係長", "危機管理担当"], facility=True)  # fmt: skip
    # 173 associations spread over the 13 districts (13 x 13 + 4).
    per_district = [14 if i < 4 else 13 for i in range(len(DISTRICTS))]
    for (dcode, dname), count in zip(DISTRICTS, per_district, strict=True):
        fed = f"fed-{dcode}"
        org_rows(fed, f"{dname}地区連合町内会", "federation", dname, "", "",
                 ["会長", "副会長"])  # fmt: skip
        for n in range(1, count + 1):
            tags = []
            if rng.random() < 0.2:
                tags.append("cliff-zone")
            if rng.random() < 0.15:
                tags.append("flood-zone")
            if dcode in ("nojima", "shiba", "tomioka-east") and rng.random() < 0.6:
                tags.append("tsunami-zone")
            roles = ["会長", "副会長", "防災担当"][: rng.choice([2, 2, 3, 3, 3])]
            name = f"{dname}{rng.choice(ASSOCIATION_SUFFIXES)}自治会"
            org_rows(f"assoc-{dcode}-{n:02d}", name, "association", dname, fed,
                     ";".join(tags), roles, elderly=True)  # fmt: skip
    for n in range(1, 27):
        dcode, dname = DISTRICTS[(n - 1) % len(DISTRICTS)]
        roles = ["拠点運営委員長", "副委員長", "防災担当"][: rng.choice([2, 2, 3])]
        org_rows(f"base-{n:02d}", f"{dname}第{n}地域防災拠点（小中学校）", "disaster_base",
                 dname, "", "", roles)  # fmt: skip
    for n in range(1, 10):
        dcode, dname = DISTRICTS[n % len(DISTRICTS)]
        org_rows(f"plaza-{n}", f"{dname}地域ケアプラザ", "care_plaza", dname, "", "",
                 ["所長", "地域活動交流コーディネーター"], facility=True)  # fmt: skip
    for n, name in enumerate(FACILITIES, start=1):
        dcode, dname = DISTRICTS[n % len(DISTRICTS)]
        org_rows(f"facility-{n:02d}", name, "facility", dname, "", "",
                 ["施設長"], facility=True)  # fmt: skip
    for n in range(1, 6):
        dcode, dname = DISTRICTS[(n * 2) % len(DISTRICTS)]
        org_rows(f"shelter-{n}", f"{dname}風水害時避難場所{n}", "shelter", dname, "",
                 "flood-zone", ["施設長", "開設担当"], facility=True)  # fmt: skip
    org_rows("hospital-1", "金沢区災害拠点病院A", "hospital", "釜利谷", "", "",
             ["災害対策担当", "事務長"], facility=True)  # fmt: skip
    org_rows("hospital-2", "金沢区災害拠点病院B", "hospital", "六浦", "", "",
             ["災害対策担当", "事務長"], facility=True)  # fmt: skip
    return rows


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else OUT
    rows = build(random.Random(SEED))
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} contacts to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
