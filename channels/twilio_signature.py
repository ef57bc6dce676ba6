"""X-Twilio-Signature checks for webhooks, with several auth tokens for rotation."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, remove_port

Params = Mapping[str, str] | Mapping[str, Sequence[str]] | Iterable[tuple[str, str]]


class _MultiParams(dict[str, list[str]]):
    """Form fields with repeated keys, in the shape `RequestValidator` reads (`getall`).

    A plain dict with a list value makes `compute_signature` raise; repeated keys (Twilio sends
    list parameters as repeated form keys) must all be signed.
    """

    def getall(self, key: str) -> list[str]:
        return self[key]


def _normalise(params: Params | None) -> _MultiParams:
    multi = _MultiParams()
    if params is None:
        return multi
    if isinstance(params, Mapping):
        # MultiDict-like objects (aiohttp, starlette) iterate keys once per value; getall/
        # getlist give every value of a key.
        for key in params:
            getall = getattr(params, "getall", None) or getattr(params, "getlist", None)
            value = getall(key) if getall is not None else params[key]
            values = [value] if isinstance(value, str) else list(value)
            multi[str(key)] = [str(v) for v in values]
        return multi
    for key, value in params:
        multi.setdefault(str(key), []).append(str(value))
    return multi


def verify_twilio_signature(
    url: str,
    params: Params | None,
    signature: str | None,
    auth_tokens: Sequence[str],
) -> bool:
    """True when `signature` is Twilio's HMAC of `url` + `params` under any of `auth_tokens`.

    `url` is the exact URL Twilio called (public scheme, host, path and query). Tries it with
    and without the default port, as twilio's own validator does. Never raises: a missing
    header, an empty token list or a malformed URL is simply False.
    """
    if not signature or not auth_tokens:
        return False
    try:
        fields = _normalise(params)
        parsed = urlparse(url)
        urls = {remove_port(parsed), add_port(parsed)}
        expected = signature.strip().encode("utf-8")
        valid = False
        for token in auth_tokens:
            if not token:
                continue
            validator = RequestValidator(token)
            for candidate in urls:
                computed = validator.compute_signature(candidate, fields).encode("utf-8")
                # No early exit: the time taken does not tell which token or URL matched.
                valid |= hmac.compare_digest(computed, expected)
        return valid
    except Exception:  # garbage in (bad URL, odd params): not a valid Twilio request
        return False
