"""Which questions an alert asks an organization: its questionnaires' questions for the
organization's kind, in the order the questionnaires were chosen."""

from __future__ import annotations

from collections.abc import Sequence

from relay.models import ORG_KINDS
from relay.questions.catalog import MAX_QUESTIONS, Question, QuestionnaireError, questionnaire


def check_choice(names: Sequence[str]) -> None:
    """Refuse (QuestionnaireError) an unknown questionnaire, one chosen twice, two that share a
    question id, or more questions for one kind than a keypad or a compact SMS can answer."""
    if len(set(names)) != len(names):
        raise QuestionnaireError("a questionnaire is chosen twice")
    chosen = [questionnaire(name) for name in names]
    ids = [q.id for qn in chosen for q in qn.questions]
    shared = sorted({i for i in ids if ids.count(i) > 1})
    if shared:
        raise QuestionnaireError(f"questionnaires share question ids: {', '.join(shared)}")
    for kind in ORG_KINDS:
        asked = [q for qn in chosen for q in qn.for_kind(kind)]
        if len(asked) > MAX_QUESTIONS:
            raise QuestionnaireError(
                f"{kind} would be asked {len(asked)} questions; at most {MAX_QUESTIONS}"
            )


def questions_for(names: Sequence[str], org_kind: str) -> tuple[Question, ...]:
    return tuple(q for name in names for q in questionnaire(name).for_kind(org_kind))


def all_questions(names: Sequence[str]) -> tuple[Question, ...]:
    return tuple(q for name in names for q in questionnaire(name).questions)
