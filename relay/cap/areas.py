"""Does a CAP document concern 金沢区? (SPEC 5.2, issue 18.) A document relayed as issued is
sent to the ward's leaders only when one of its <area> blocks covers the ward: by code, by
name, or by a polygon or circle around the ward office.

Codes and names are of areas that contain the whole ward (the ward, 横浜市, 神奈川県, and JMA's
regions that the ward lies in); a name is matched exactly, except that any name mentioning
金沢区 counts, because 「神奈川県西部」 contains 「神奈川県」 and is not the ward's area.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from math import asin, cos, radians, sin, sqrt

# 金沢区役所 (横浜市金沢区泥亀二丁目9番1号), WGS 84 as CAP requires.
WARD_POINT = (35.3374, 139.6246)

# Long enough to be unambiguous whatever the valueName says: JIS X 0402 with its check digit
# (141089 金沢区, 141003 横浜市, 140007 神奈川県) and JMA's 7-digit area codes (1410800 金沢区
# in intensity lists, 1410000 横浜市 in warnings).
_CODES_ANY_SCHEME = frozenset({"141089", "141003", "140007", "1410800", "1410000"})
# Five digits collide with other schemes (US ZIP 14108 is in New York State): only when the
# valueName says it is JIS X 0402, as the relay's own exports do.
_JIS_CODES = frozenset({"14108", "14100", "14000"})

_NAMES = frozenset({
    "横浜市", "横浜市全域", "神奈川県", "神奈川県全域", "神奈川県東部", "東京湾内湾",
    "yokohama", "yokohama city", "yokohama-shi", "kanagawa", "kanagawa prefecture",
})  # fmt: skip
_WARD_NAME = re.compile(r"金沢区|kanazawa[- ]?(ward|ku)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Area:
    """One CAP <area>: its description, geocodes as (valueName, value), polygons and circles
    as CAP writes them ("lat,lon lat,lon …" and "lat,lon radius-km")."""

    desc: str
    geocodes: tuple[tuple[str, str], ...] = ()
    polygons: tuple[str, ...] = ()
    circles: tuple[str, ...] = ()


def _by_code(name: str, value: str) -> bool:
    value = value.strip()
    if value in _CODES_ANY_SCHEME:
        return True
    return value in _JIS_CODES and "jis" in name.lower()


def _by_name(desc: str) -> bool:
    text = " ".join(desc.split())
    return bool(_WARD_NAME.search(text)) or text.lower() in _NAMES


def _points(polygon: str) -> list[tuple[float, float]]:
    points = []
    for pair in polygon.split():
        lat, _, lon = pair.partition(",")
        points.append((float(lat), float(lon)))
    return points


def _in_polygon(polygon: str, point: tuple[float, float]) -> bool:
    """Ray casting; CAP polygons are small enough that the earth's curve does not matter."""
    lat, lon = point
    points = _points(polygon)
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(points, points[1:] + points[:1], strict=True):
        if (lat1 > lat) != (lat2 > lat):
            crossing = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing:
                inside = not inside
    return inside


def _in_circle(circle: str, point: tuple[float, float]) -> bool:
    centre, _, radius = circle.strip().partition(" ")
    lat, _, lon = centre.partition(",")
    return _distance_km((float(lat), float(lon)), point) <= float(radius)


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(radians, (*a, *b))
    h = sin((lat2 - lat1) / 2) ** 2 + cos(lat1) * cos(lat2) * sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * asin(sqrt(h))


def _shape_contains(test: Callable[[str, tuple[float, float]], bool], shape: str) -> bool:
    # The schema leaves shapes as free text: one that is not numbers covers nothing.
    try:
        return test(shape, WARD_POINT)
    except ValueError:
        return False


def covers_ward(area: Area) -> bool:
    """True when this area contains the ward."""
    return (
        _by_name(area.desc)
        or any(_by_code(name, value) for name, value in area.geocodes)
        or any(_shape_contains(_in_polygon, p) for p in area.polygons)
        or any(_shape_contains(_in_circle, c) for c in area.circles)
    )


def any_covers_ward(areas: Iterable[Area]) -> bool:
    return any(covers_ward(area) for area in areas)
