"""Questionnaires: templates/questions/<name>.toml, loaded and checked once.

A questionnaire is an ordered list of questions. Each has an id, a label per language (ja
required; en and ja-easy fall back to it), a kind, whether it is required, and the kinds of
organization it is asked of (none: every kind). Kinds:
- `choice`: numbered options 1..n in the order written; an option may be `critical`
  (負傷者あり, 倒壊あり: shown first in the ward's picture);
- `number`: a whole number within [min, max], with a unit;
- `yes_no`: 1 = はい, 2 = いいえ (the digits a keypad and an SMS can send); `critical = "yes"`
  or `"no"` names the critical answer (火災 yes; 電気・水 no);
- `text`: free text up to max_length characters.
TOML like the message catalog, so the files carry comments that say why. A malformed file stops
the relay at start-up with the file and the field (QuestionnaireError), never half-way through
an alert.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from relay.models import ORG_KINDS

LANGUAGES = ("ja", "en", "ja-easy")
KINDS = ("choice", "number", "yes_no", "text")
Kind = Literal["choice", "number", "yes_no", "text"]
YES_NO = (
    {"ja": "はい", "en": "Yes", "ja-easy": "はい"},
    {"ja": "いいえ", "en": "No", "ja-easy": "いいえ"},
)
QUESTIONS_DIR = Path(__file__).resolve().parents[2] / "templates" / "questions"
MAX_QUESTIONS = 9  # one digit each: a compact SMS answer, a keypad


class QuestionnaireError(ValueError):
    """A questionnaire file that cannot be used; the message names the file and field."""


class AnswerError(ValueError):
    """An answer a question cannot take; the message is safe to show the person who gave it."""


@dataclass(frozen=True)
class Option:
    number: int  # 1..n, what a keypad or SMS sends
    labels: dict[str, str]
    critical: bool = False

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["ja"]


@dataclass(frozen=True)
class Question:
    id: str
    kind: Kind
    labels: dict[str, str]
    required: bool
    kinds: tuple[str, ...] = ()  # organization kinds asked; () = every kind
    options: tuple[Option, ...] = ()
    minimum: int = 0
    maximum: int = 0
    units: dict[str, str] = field(default_factory=dict)
    max_length: int = 200
    critical: str | None = None  # yes_no: "yes" or "no"

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["ja"]

    def asked_of(self, org_kind: str) -> bool:
        return not self.kinds or org_kind in self.kinds

    def choices(self) -> tuple[Option, ...]:
        """The numbered options of a choice or yes/no question."""
        if self.kind == "yes_no":
            return tuple(
                Option(n, labels, critical=self.critical == ("yes", "no")[n - 1])
                for n, labels in enumerate(YES_NO, start=1)
            )
        return self.options

    def check(self, value: object) -> int | str:
        """The stored form of an answer (an option number, a number, or text), or AnswerError
        naming what this question takes."""
        if self.kind == "text":
            text = str(value).strip()
            if not text:
                raise AnswerError(f"{self.label('ja')}: 空の回答です")
            if len(text) > self.max_length:
                raise AnswerError(f"{self.label('ja')}: {self.max_length}字までです")
            return text
        number = _whole_number(value)
        if number is None:
            raise AnswerError(f"{self.label('ja')}: 数字で答えてください")
        if self.kind == "number":
            if not self.minimum <= number <= self.maximum:
                raise AnswerError(
                    f"{self.label('ja')}: {self.minimum}〜{self.maximum}で答えてください"
                )
            return number
        count = len(self.choices())
        if not 1 <= number <= count:
            raise AnswerError(f"{self.label('ja')}: 1〜{count}の番号で答えてください")
        return number

    def shown(self, stored: int | str, language: str = "ja") -> str:
        """An answer as people read it: the option's label (負傷者あり), the number with its
        unit (45人), or the text."""
        if self.kind in ("choice", "yes_no"):
            option = next((o for o in self.choices() if o.number == stored), None)
            return option.label(language) if option else str(stored)
        if self.kind == "number":
            return f"{stored}{self.units.get(language) or self.units.get('ja', '')}"
        return str(stored)

    def is_critical(self, stored: int | str) -> bool:
        return any(o.critical and o.number == stored for o in self.choices())


@dataclass(frozen=True)
class Questionnaire:
    name: str
    labels: dict[str, str]
    questions: tuple[Question, ...]

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["ja"]

    def for_kind(self, org_kind: str) -> tuple[Question, ...]:
        """The questions an organization of this kind is asked, in order."""
        return tuple(q for q in self.questions if q.asked_of(org_kind))

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None


def _labels(table: object, where: str) -> dict[str, str]:
    if not isinstance(table, dict) or not isinstance(table.get("ja"), str) or not table["ja"]:
        raise QuestionnaireError(f"{where}: a label table with at least ja")
    labels = {k: v for k, v in table.items() if k in LANGUAGES}
    if not all(isinstance(v, str) and v for v in labels.values()):
        raise QuestionnaireError(f"{where}: labels must be non-empty text")
    return labels


def _question(raw: Any, where: str) -> Question:
    if not isinstance(raw, dict):
        raise QuestionnaireError(f"{where}: a table")
    qid = raw.get("id")
    if not isinstance(qid, str) or not qid.isidentifier():
        raise QuestionnaireError(f"{where}: id must be a name like injured or base_opened")
    where = f"{where} ({qid})"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise QuestionnaireError(f"{where}: kind must be one of {', '.join(KINDS)}")
    kinds = tuple(raw.get("kinds", ()))
    unknown = [k for k in kinds if k not in ORG_KINDS]
    if unknown:
        raise QuestionnaireError(f"{where}: unknown organization kind {', '.join(unknown)}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise QuestionnaireError(f"{where}: required is true or false")
    fields: dict[str, Any] = {}
    if kind == "choice":
        options = raw.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= 9:
            raise QuestionnaireError(f"{where}: a choice needs 2 to 9 options")
        fields["options"] = tuple(
            Option(n, _labels(o, f"{where} option {n}"), bool(o.get("critical", False)))
            for n, o in enumerate(options, start=1)
        )
    elif kind == "number":
        low, high = raw.get("min"), raw.get("max")
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low < high <= 999_999):
            raise QuestionnaireError(f"{where}: a number needs whole min < max within 0..999999")
        fields.update(minimum=low, maximum=high, units=_labels(raw.get("unit"), f"{where} unit"))
    elif kind == "yes_no":
        critical = raw.get("critical")
        if critical not in (None, "yes", "no"):
            raise QuestionnaireError(f'{where}: critical is "yes" or "no"')
        fields["critical"] = critical
    else:
        length = raw.get("max_length", 200)
        if not isinstance(length, int) or not 1 <= length <= 1000:
            raise QuestionnaireError(f"{where}: max_length must be 1..1000")
        fields["max_length"] = length
    return Question(
        id=qid,
        kind=kind,
        labels=_labels(raw.get("label"), f"{where} label"),
        required=required,
        kinds=kinds,
        **fields,
    )


def load_questionnaire(path: Path) -> Questionnaire:
    where = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise QuestionnaireError(f"{where}: {exc}") from None
    name = raw.get("name")
    if name != path.stem:
        raise QuestionnaireError(f"{where}: name must be {path.stem!r}, the file's name")
    questions = raw.get("questions")
    if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_QUESTIONS:
        raise QuestionnaireError(f"{where}: 1 to {MAX_QUESTIONS} [[questions]]")
    parsed = tuple(_question(q, f"{where} question {n}") for n, q in enumerate(questions, 1))
    ids = [q.id for q in parsed]
    if len(set(ids)) != len(ids):
        raise QuestionnaireError(f"{where}: question ids must be unique")
    return Questionnaire(name, _labels(raw.get("label"), f"{where} label"), parsed)


@lru_cache(maxsize=4)
def load_all(directory: Path = QUESTIONS_DIR) -> dict[str, Questionnaire]:
    """Every questionnaire of a folder, by name."""
    found = {}
    for path in sorted(directory.glob("*.toml")):
        questionnaire = load_questionnaire(path)
        found[questionnaire.name] = questionnaire
    return found


def questionnaire(name: str) -> Questionnaire:
    """The built-in questionnaire `name`, or QuestionnaireError listing the known ones."""
    known = load_all()
    if name not in known:
        raise QuestionnaireError(f"unknown questionnaire {name!r} (known: {', '.join(known)})")
    return known[name]
