"""Operators' own templates: loaded from a second folder, checked like the shipped ones,
rendered in a sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

import relay.messages as messages
from relay.messages import (
    CatalogError,
    Composer,
    MessageContext,
    TemplateRenderError,
    TemplateVariableError,
    UnknownTemplateError,
)

CATALOG = """
[answers.water_ok]
digit = "4"
label = { ja = "給水所を確認" }

[variables.until]
type = "text"
max_length = 20

[events.water-outage]
required = ["area"]
optional = ["until"]
sms_budget = 2
answers = ["ack", "need_support", "water_ok"]
sample = { area = "六浦一丁目", until = "18時" }

[events.water-outage.cap]
category = "Infra"
urgency = "Expected"
severity = "Moderate"
certainty = "Observed"
response_type = "Monitor"
event = { ja = "断水" }
headline = { ja = "断水（{{ area }}）" }
description = { ja = "{{ area }}で断水しています。" }
instruction = { ja = "給水所をご確認ください。" }
"""

FILES = {
    "sms.ja.j2": (
        '{% import "_base/common.j2" as c with context %}\n'
        "【金沢区】断水（{{ area }}）{% if until %}{{ until }}まで{% endif %}\n"
        "{{ c.sms_answer() }}\n"
    ),
    "voice.ja.j2": "金沢区役所です。{{ area }}で断水しています。\n",
    "email_subject.ja.j2": "【金沢区】断水のお知らせ [{{ reference }}]\n",
    "email.ja.txt.j2": "{{ area }}で断水しています。\n{{ ack_url }}\n連絡番号 {{ reference }}\n",
    "email.ja.html.j2": (
        '{% extends "_base/email.html.j2" %}\n'
        "{% block headline %}断水（{{ area }}）{% endblock %}\n"
        "{% block content %}<p>{{ area }}で断水しています。</p>{% endblock %}\n"
    ),
}


def operator_dir(
    tmp_path: Path, overrides: dict[str, str] | None = None, catalog: str = CATALOG
) -> Path:
    root = tmp_path / "operator"
    (root / "water-outage").mkdir(parents=True)
    (root / "catalog.toml").write_text(catalog, encoding="utf-8")
    for name, text in {**FILES, **(overrides or {})}.items():
        (root / "water-outage" / name).write_text(text, encoding="utf-8")
    return root


def ctx(status: str = "Exercise") -> MessageContext:
    return MessageContext(
        status,
        datetime(2024, 11, 29, 1, 5, tzinfo=UTC),
        "K7QF",
        "https://relay.example.jp/a/xyz",
        True,
        "",
        "",
    )


def test_operator_event_renders_beside_the_built_in_ones(tmp_path: Path) -> None:
    composer = Composer(operator_dir=operator_dir(tmp_path))
    assert "water-outage" in composer.list_templates() and "earthquake" in composer.list_templates()
    variables = composer.sample_variables("water-outage")
    composer.validate("water-outage", variables)
    sms = composer.render("water-outage", "sms", "ja", variables, ctx())
    assert (
        sms.text == "【訓練】【金沢区】断水（六浦一丁目）18時まで\nhttps://relay.example.jp/a/xyz"
    )
    # Without a link, the answers are listed for a reply, the operator's own among them.
    no_link = MessageContext(
        "Exercise", datetime(2024, 11, 29, 1, 5, tzinfo=UTC), "K7QF", None, True, "", ""
    )
    assert "4給水所を確認" in composer.render("water-outage", "sms", "ja", variables, no_link).text
    composer.check_budget("water-outage", sms)
    # No English templates: the Japanese ones are used, and the markers are still enforced.
    email = composer.render("water-outage", "email", "en", variables, ctx())
    assert email.language == "en"
    assert email.subject is not None and email.subject.startswith("【訓練】DRILL 【金沢区】断水")
    assert email.text.startswith("【訓練】")
    assert email.html is not None and "【訓練】" in email.html and "<html" in email.html
    voice = composer.render("water-outage", "voice", "ja", variables, ctx())
    assert voice.text.startswith("これは訓練です。")
    assert [o.digit for o in composer.answer_options("water-outage", "ja")] == ["1", "2", "4"]
    assert composer.cap_info("water-outage", "ja", variables).category == "Infra"


def test_operator_variables_are_strict(tmp_path: Path) -> None:
    composer = Composer(operator_dir=operator_dir(tmp_path))
    with pytest.raises(TemplateVariableError, match="'colour'"):
        composer.validate("water-outage", {"area": "六浦", "colour": "blue"})
    with pytest.raises(TemplateVariableError, match="'area'"):
        composer.validate("water-outage", {})


def test_operator_template_using_an_undeclared_variable_fails_validation(tmp_path: Path) -> None:
    root = operator_dir(tmp_path, {"voice.ja.j2": "{{ area }}で断水。復旧は{{ eta }}です。"})
    composer = Composer(operator_dir=root)
    with pytest.raises(TemplateVariableError) as caught:
        composer.validate("water-outage", {"area": "六浦"})
    assert caught.value.variables == ("eta",)
    assert "water-outage/voice.ja.j2" in str(caught.value)


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ area.__class__.__mro__ }}",
        "{{ answer_options[0].__class__.__init__.__globals__ }}",
        "{{ answer_options.append(1) }}",  # immutable: no changing what the composer passed
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    ],
)
def test_sandbox_blocks_attribute_walks(tmp_path: Path, attack: str) -> None:
    composer = Composer(operator_dir=operator_dir(tmp_path, {"sms.ja.j2": attack}))
    with pytest.raises(TemplateRenderError) as caught:
        composer.render("water-outage", "sms", "ja", {"area": "六浦"}, ctx())
    assert isinstance(caught.value.__cause__, SecurityError)
    assert "unsafe" in str(caught.value) and "water-outage/sms.ja.j2" in str(caught.value)
    assert "object at 0x" not in str(caught.value)


def test_operator_templates_cannot_read_built_in_event_templates(tmp_path: Path) -> None:
    root = operator_dir(tmp_path, {"sms.ja.j2": '{% include "earthquake/sms.ja.j2" %}'})
    with pytest.raises(TemplateRenderError, match=r"earthquake/sms\.ja\.j2"):
        Composer(operator_dir=root).render("water-outage", "sms", "ja", {"area": "六浦"}, ctx())


def test_built_in_templates_are_not_sandboxed_but_not_replaceable(tmp_path: Path) -> None:
    clash = CATALOG.replace("[events.water-outage", "[events.earthquake")
    with pytest.raises(CatalogError, match="earthquake"):
        Composer(operator_dir=operator_dir(tmp_path, catalog=clash))
    answer_clash = CATALOG.replace("[answers.water_ok]", "[answers.ack]").replace(
        '"water_ok"', '"ack"'
    )
    with pytest.raises(CatalogError, match="ack"):
        Composer(operator_dir=operator_dir(tmp_path / "b", catalog=answer_clash))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('category = "Infra"', 'category = "Water"'), "category"),
        (('response_type = "Monitor"', 'response_type = "Panic"'), "response_type"),
        (("sms_budget = 2", "sms_budget = 0"), "sms_budget"),
        (('digit = "4"', 'digit = "9"'), "digit"),
        (('answers = ["ack", "need_support", "water_ok"]', 'answers = ["need_support"]'), "ack"),
        (('optional = ["until"]', 'optional = ["reference"]'), "reference"),
        (("[variables.until]", "[variables.ack_url]"), "ack_url"),
    ],
)
def test_bad_operator_catalogs_fail_at_load(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        Composer(operator_dir=operator_dir(tmp_path, catalog=CATALOG.replace(*change)))


def test_operator_event_needs_its_japanese_templates(tmp_path: Path) -> None:
    root = operator_dir(tmp_path)
    (root / "water-outage" / "voice.ja.j2").unlink()
    with pytest.raises(CatalogError, match=r"voice\.ja\.j2"):
        Composer(operator_dir=root)


@pytest.fixture
def restore_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.delenv(messages.OPERATOR_TEMPLATES_ENV, raising=False)
    messages.configure()


def test_default_composer_reads_the_environment(
    tmp_path: Path, restore_default: pytest.MonkeyPatch
) -> None:
    restore_default.setenv(messages.OPERATOR_TEMPLATES_ENV, str(operator_dir(tmp_path)))
    messages.configure()
    assert "water-outage" in messages.list_templates()
    messages.validate("water-outage", {"area": "六浦"})
    restore_default.delenv(messages.OPERATOR_TEMPLATES_ENV)
    messages.configure()
    with pytest.raises(UnknownTemplateError):
        messages.validate("water-outage", {"area": "六浦"})
