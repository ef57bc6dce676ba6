"""A recipient tapping the acknowledgement link in an SMS or an email."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

from .callbacks import Courier, Party

# URLs are ASCII; in Japanese text a link often runs straight into the next word
# ("https://.../a/K7QFです"), so stop at the first character a URL cannot hold.
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_TRAILING = ".,;:!?)]'"


def default_link_base(webhook_url: str) -> str:
    """Scheme, host and port of the relay's webhook, then /a/ (the ack-link path)."""
    parts = urlsplit(webhook_url)
    return f"{parts.scheme}://{parts.netloc}/a/"


def urls(text: str) -> set[str]:
    """Every URL in `text`."""
    return {match.group(0).rstrip(_TRAILING) for match in _URL.finditer(text)}


def find_link(text: str, base: str) -> str | None:
    """The first URL in `text` that starts with `base`."""
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if url.startswith(base):
            return url
    return None


async def tap(courier: Courier, url: str, answer: str, party: Party) -> None:
    """Open the page (GET, follows redirects), then press the answer button (POST)."""
    page = await courier.plain("link_get", "GET", url, party)
    await courier.plain(
        "link_post", "POST", url, party, form={"answer": answer}, cookies=page.cookies
    )


async def fill_in(
    courier: Courier,
    url: str,
    answers: dict[str, str],
    party: Party,
    otherwise: str | None = None,
) -> None:
    """Open the page, then send its situation-report form (fields `q_<question id>`) with the
    answers it asks for; the post is logged with those. A page without such fields (a message
    that asks nothing): press the `otherwise` button, if any."""
    page = await courier.plain("link_get", "GET", url, party)
    given = {q: value for q, value in answers.items() if f'name="q_{q}"' in page.text}
    if not given:
        if otherwise is not None:
            await courier.plain(
                "link_post", "POST", url, party, form={"answer": otherwise}, cookies=page.cookies
            )
        return
    await courier.plain(
        "link_post",
        "POST",
        f"{url}/answers",
        dataclasses.replace(party, answers=given),
        form={f"q_{question}": value for question, value in given.items()},
        cookies=page.cookies,
    )
