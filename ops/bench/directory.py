"""A synthetic large directory for the scale scenarios: N organizations, one contact each.

Deterministic; the numbers are fictional mobile numbers (090-1xxx-xxxx blocks) that only the
carrier simulator ever receives. The columns are the import file's own, so the directory goes
in through the product's importer (relay.directory.store).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

COLUMNS = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language"
).split(",")
DISTRICTS = ("金沢", "六浦", "釜利谷", "富岡西", "富岡東", "能見台", "並木", "西柴", "大道")
SURNAMES = "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田".split()
GIVEN = "一郎 健二 正男 茂 博 誠 幸子 和子 洋子 恵子 京子 節子".split()


def mobile(n: int) -> str:
    """The n-th fictional mobile (n < 8,000,000): 090-1000-0000 upwards."""
    return f"+8190{10000000 + n:08d}"


def rows(n: int, prefix: str = "bench", start: int = 0) -> list[dict[str, str]]:
    out = []
    for i in range(start, n):
        out.append(
            {
                "org_code": f"{prefix}-{i:06d}",
                "org_name": f"{DISTRICTS[i % len(DISTRICTS)]}ベンチ町内会{i}",
                "org_kind": "association",
                "district": DISTRICTS[i % len(DISTRICTS)],
                "parent_code": "",
                "tags": "",
                "contact_name": f"{SURNAMES[i % 12]} {GIVEN[(i // 12) % 12]}",
                "role": "会長",
                "priority": "1",
                "mobile": mobile(i),
                "landline": "",
                "email": "",
                "language": "ja",
            }
        )
    return out


def csv_bytes(n: int, prefix: str = "bench") -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(n, prefix))
    return buf.getvalue().encode()


def write(path: Path, n: int, prefix: str = "bench") -> Path:
    path.write_bytes(csv_bytes(n, prefix))
    return path


def load(
    database_url: str,
    n: int,
    prefix: str = "bench",
    tags: dict[str, int] | None = None,
    start: int = 0,
) -> float:
    """Insert the directory straight into an empty directory, in set-based statements; return
    the seconds it took. Set-up only, not a measured path: the product's importer
    (relay.directory.store.apply_directory) builds one ORM object per row and takes minutes and
    gigabytes at 100,000 (the CSV file this writes is what it would import).

    tags: {"first10k": 10000} tags the first 10,000 organizations, so an audience `tag:first10k`
    selects them out of the same directory. start: add organizations start..n-1 to a directory
    loaded earlier with n=start.
    """
    import time
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from relay.db import engine_for
    from relay.models import Contact, ContactPath, Organization

    started = time.perf_counter()
    now = datetime.now(UTC)
    tags = tags or {}
    orgs, contacts, paths = [], [], []
    for i, row in enumerate(rows(n, prefix, start), start=start + 1):
        orgs.append(
            {
                "id": i,
                "code": row["org_code"],
                "name": row["org_name"],
                "kind": row["org_kind"],
                "district": row["district"],
                "tags": [tag for tag, upto in tags.items() if i <= upto],
                "holds_assistance_list": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        contacts.append(
            {
                "id": i,
                "organization_id": i,
                "name": row["contact_name"],
                "role": row["role"],
                "priority": 1,
                "language": row["language"],
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        paths.append(
            {
                "id": i,
                "contact_id": i,
                "kind": "mobile",
                "address": row["mobile"],
                "line_type": "mobile",
            }
        )
    engine = engine_for(database_url)
    with engine.begin() as conn:
        for model, values in ((Organization, orgs), (Contact, contacts), (ContactPath, paths)):
            for start in range(0, len(values), 5000):
                conn.execute(insert(model), values[start : start + 5000])
        for table in ("organizations", "contacts", "contact_paths"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n + 1})")
        conn.exec_driver_sql("ANALYZE organizations, contacts, contact_paths")
    return time.perf_counter() - started
