"""A recipient tapping the acknowledgement link in an SMS or an email."""

from __future__ import annotations

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


async def fill_in(courier: Courier, url: str, answers: dict[str, str], party: Party) -> None:
    """Open the page, then send its situation-report form (fields `q_<question id>`)."""
    page = await courier.plain("link_get", "GET", url, party)
    form = {f"q_{question}": value for question, value in answers.items()}
    await courier.plain(
        "link_post", "POST", f"{url}/answers", party, form=form, cookies=page.cookies
    )
