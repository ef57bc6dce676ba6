"""HTTP details of the CAP endpoints (relay/web/api.py): reading the document body within a
size limit, and what the OpenAPI description says about both."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from relay.cap.export import MEDIA_TYPE

# A CAP document in three languages is ~6 KB; embedded resources (derefUri) are not relayed.
MAX_CAP_BODY = 512_000
CAP_MEDIA_TYPES = (MEDIA_TYPE, "application/xml", "text/xml")

IMPORT_DESCRIPTION = f"""Issue an alert from a CAP 1.2 document (operator role).

The request body is the CAP XML itself (Content-Type `{MEDIA_TYPE}`, `application/xml` or
`text/xml`, at most {MAX_CAP_BODY} bytes). Who receives it and how are not in CAP terms, so
they are given alongside as query parameters: `audience` (the selector, e.g.
`kind:association+district:西柴`), `channels` (repeat or comma-separate: sms, voice, email),
`mode` (cascade or blast) and `ack_within` (e.g. `15m`).

The document must be valid CAP 1.2 (`urn:oasis:names:tc:emergency:cap:1.2`), msgType `Alert`,
status `Actual`, `Exercise` or `Test`, and not past its `<expires>`. Its first Japanese `<info>`
(else any `en-*`, else easy Japanese) is read. When it names a template (eventCode
`relay:template`, or an `<event>` name of the catalog) the relay's own texts are sent, with
variables from parameters `relay:variable:NAME` (eventCode `evacuationLevel` and `<areaDesc>`
fill `level` and `area` when absent). Any other document is relayed as issued (template
`cap-relay`): its own headline, description and instruction (an `en-*` info gives the English
texts), event, urgency, severity and certainty — only when one of its `<area>`s covers 金沢区
(geocode, areaDesc, polygon or circle), else refused naming its areas. Documents with a DTD or
entity declarations are refused (no XXE, no entity expansion); an invalid document is refused
with the schema reason; nothing is written then. A document (sender, identifier) is issued
once: posted again (a retry), it is a 409 that names the alert it became. An export from
`GET /api/v1/alerts/{{id}}.cap` imports as the same alert — a re-issue, even after the
original's deadline (the export's `<expires>`); a cancelled alert exports as msgType Cancel."""

IMPORT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "string", "maxLength": MAX_CAP_BODY}}
            for media in CAP_MEDIA_TYPES
        },
    }
}
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The alert as a CAP 1.2 document",
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
}


async def read_cap_body(request: Request) -> bytes:
    """The document, refused early when it is not XML or too large (streamed bodies too:
    the app's Content-Length check does not see a chunked upload)."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in CAP_MEDIA_TYPES:
        raise HTTPException(
            415, f"send the CAP document as {', '.join(CAP_MEDIA_TYPES)} (got {media or 'none'})"
        )
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CAP_BODY:
            raise HTTPException(413, f"CAP document larger than {MAX_CAP_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
