"""Short alert reference codes (e.g. K7QF) that recipients can quote in an SMS reply.

Four characters from an alphabet without look-alikes (no 0/O, no 1/I/L), so a code read off
a small screen or heard on the phone is typed back right. 31**4 ≈ 920,000 codes: the issuer
checks for a free one; codes only need to be unique among recent alerts.
"""

from __future__ import annotations

import random
import unicodedata

REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 4
_SPACE = len(REFERENCE_ALPHABET)


def reference_code(source: random.Random | bytes) -> str:
    """A new code from a random generator, or from at least 4 random bytes
    (e.g. `secrets.token_bytes(8)`: with 8 bytes the modulo bias is below 1e-13)."""
    if isinstance(source, bytes | bytearray):
        if len(source) < 4:
            raise ValueError("reference_code needs at least 4 random bytes")
        number = int.from_bytes(source, "big") % (_SPACE**REFERENCE_LENGTH)
        chars = []
        for _ in range(REFERENCE_LENGTH):
            number, index = divmod(number, _SPACE)
            chars.append(REFERENCE_ALPHABET[index])
        return "".join(chars)
    return "".join(source.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalize_reference(text: str) -> str:
    """The form codes are compared in: NFKC (full-width ｋ７ｑｆ is K7QF), upper case,
    without spaces or hyphens a person may have typed inside it."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(c for c in folded if not c.isspace() and c not in "-‐ー")


def is_reference_code(text: str) -> bool:
    """Whether `text`, normalised, could be a code we issued."""
    code = normalize_reference(text)
    return len(code) == REFERENCE_LENGTH and all(c in REFERENCE_ALPHABET for c in code)
