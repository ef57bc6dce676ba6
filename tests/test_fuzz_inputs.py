"""Whatever comes in, the answer is a clear one: property tests (Hypothesis) for the SMS reply
path, the directory CSV importer and operator-written templates (sandboxed, so no template
injection), with arbitrary input."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError

from relay.db import transaction
from relay.directory.csv_format import COLUMNS, DirectoryFileError, parse_directory
from relay.directory.store import apply_directory
from relay.messages import Composer, MessageError
from relay.replies.parsing import parse_reply
from tests.test_messages_operator import ctx, operator_dir
from tests.test_webhooks import app_env, inbound, signed

__all__ = ["app_env"]  # the fixture, used below

# --- SMS replies ---------------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=400)
# What an HTTP request can carry: UTF-8, so no lone surrogates (which _ANY_TEXT has).
_ANY_SENT_TEXT = st.text(st.characters(codec="utf-8"), max_size=400)


@given(_ANY_TEXT, st.sets(st.sampled_from("123456789"), max_size=4))
def test_reply_parser_never_raises_whatever_the_text_and_answers(text: str, digits: set[str]):
    reply = parse_reply(text, answer_digits=tuple(sorted(digits)))
    assert reply.kind in {"ack", "answer", "report", "empty"}
    if reply.kind == "answer":
        assert reply.digit in digits


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_ANY_SENT_TEXT.filter(lambda t: "\x00" not in t), sender=st.sampled_from(
    ["+819099990001", "+819011112222", "", "not-a-number"]
))  # fmt: skip
def test_any_inbound_sms_is_stored_and_answered_with_twiml(app_env, body: str, sender: str):
    """Through the signed webhook: any text from anyone is a 200 with TwiML, never a 500."""
    client, _, _ = app_env
    params = {**inbound(body, "SM" + uuid.uuid4().hex), "From": sender}
    response = client.post(
        "/webhooks/twilio/sms", data=params, headers=signed("/webhooks/twilio/sms", params)
    )
    assert response.status_code == 200, response.text
    assert response.text.startswith("<?xml") and "<Response" in response.text


# --- the directory CSV ----------------------------------------------------------------------


def _clear(error: DirectoryFileError) -> None:
    """A refusal an office clerk can act on: every error names a line, a column and a reason."""
    assert error.errors
    for row_error in error.errors:
        text = str(row_error)
        assert text.startswith("line ") and row_error.reason and "Traceback" not in text


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_clear_error_or_a_clean_parse(data: bytes) -> None:
    try:
        parse_directory(data)
    except DirectoryFileError as error:
        _clear(error)


def test_a_field_over_the_csv_limit_is_a_clear_error() -> None:
    header = ",".join(COLUMNS).encode()
    with pytest.raises(DirectoryFileError) as caught:
        parse_directory(header + b'\n"' + b"x" * 200_000 + b'"\n')
    _clear(caught.value)
    assert "field larger than field limit" in str(caught.value.errors[0])


_CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "090-1234-5678", "045-788-7700", "a@example.jp", "1", "ja", "en",
                     "association", "hospital", "西柴", "x" * 300, '"', "\n", "\x00", "=1+1"]),
)  # fmt: skip


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({c: _CELL for c in COLUMNS}), max_size=6))
def test_any_rows_under_a_good_header_import_cleanly_or_are_refused(
    db_url: str, rows: list[dict[str, str]]
) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    try:
        parsed = parse_directory(out.getvalue().encode("utf-8"))
    except DirectoryFileError as error:
        _clear(error)
        return
    with transaction(db_url) as session:  # what parsed must also be stored without a fault
        apply_directory(session, parsed, actor="fuzz")


# --- operator-written templates ----------------------------------------------------------------

_JINJA_BITS = st.sampled_from([
    "{{ ", " }}", "{% ", " %}", "{# ", " #}", "area", "until", "reference", "self", "config",
    "__class__", "__mro__", "__subclasses__()", "__globals__", "__init__", "__builtins__",
    "[1]", ".", "|attr('__class__')", "|e", "|safe", "|list", "|join", "cycler", "joiner",
    "lipsum", "namespace", "range(99999999)", "'a' * 999999999", "9 ** 9 ** 9", "1/0", "()",
    "os", ".popen('id')", "import os", "include 'x'", "extends '_base/email.html.j2'",
    "set x = ", "for i in ", " endfor", "if ", " endif", "'", '"', "\n", "金沢区",
    "{{ area.__class__.__base__.__subclasses__() }}", "{% raw %}", "{% endraw %}",
])  # fmt: skip
_TEMPLATE = st.lists(_JINJA_BITS, max_size=12).map("".join) | st.text(max_size=80)


@pytest.fixture(scope="module")
def composer_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return operator_dir(tmp_path_factory.mktemp("ops"))


@settings(max_examples=300, deadline=None)
@given(_TEMPLATE)
def test_operator_templates_render_or_fail_cleanly_never_escape_the_sandbox(
    composer_root: Path, source: str
) -> None:
    (composer_root / "water-outage" / "sms.ja.j2").write_text(source, encoding="utf-8")
    composer = Composer(operator_dir=composer_root)
    try:
        message = composer.render("water-outage", "sms", "ja", {"area": "六浦"}, ctx())
    except MessageError as error:
        # Refused with a reason naming the template, never a Python internals dump.
        assert "object at 0x" not in str(error)
        if isinstance(error.__cause__, SecurityError):
            assert "unsafe" in str(error)
        return
    for leak in ("<class ", "<module ", "<function ", "<built-in", "object at 0x", "uid="):
        assert leak not in message.text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20).map(lambda t: "{{ " + t + " }}") | st.text(max_size=20))
def test_operator_values_are_text_never_template_code(composer_root: Path, value: str) -> None:
    """What an operator types into a variable (the area) is shown as typed, never run."""
    (composer_root / "water-outage" / "sms.ja.j2").write_text(
        "【金沢区】断水（{{ area }}）\n", encoding="utf-8"
    )
    composer = Composer(operator_dir=composer_root)
    try:
        message = composer.render("water-outage", "sms", "ja", {"area": value}, ctx())
    except MessageError:
        return  # refused by the variable's own rules (length, blank...)
    assert "{{ 7*7 }}" not in value or "49" not in message.text.replace(value, "")
    assert value.strip() in message.text or not value.strip()


def test_a_value_that_looks_like_jinja_is_printed_as_is(composer_root: Path) -> None:
    (composer_root / "water-outage" / "sms.ja.j2").write_text("（{{ area }}）", encoding="utf-8")
    composer = Composer(operator_dir=composer_root)
    attack = "{{7*7}}{%if 1%}x{%endif%}"  # within the variable's 30 characters
    message = composer.render("water-outage", "sms", "ja", {"area": attack}, ctx())
    assert attack in message.text and "49" not in message.text


@pytest.mark.parametrize(
    "source",
    [
        "{{ 1/0 }}",
        "{{ range(99999999)|list }}",
        "{{ 'a' * 999999999 }}",
        "{{ 9 ** (9 ** 9) }}",
        "{{ [1] * 999999999 }}",
        "{{ area|int + [] }}",
        "{{ area[99] }}",
        "{{ {}.x.y }}",
    ],
)
def test_operator_template_faults_are_render_errors(composer_root: Path, source: str) -> None:
    """A template that divides by zero or asks for a gigabyte is refused with a reason, in
    bounded time and memory, not a crash of the process that renders it."""
    (composer_root / "water-outage" / "sms.ja.j2").write_text(source, encoding="utf-8")
    composer = Composer(operator_dir=composer_root)
    with pytest.raises(MessageError, match=r"water-outage/sms\.ja\.j2"):
        composer.render("water-outage", "sms", "ja", {"area": "六浦"}, ctx())
