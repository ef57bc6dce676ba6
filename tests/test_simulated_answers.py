"""The simulated people's situation reports (simulator/realistic.py): what they write is what
they mean — the relay's own parser reads each SMS back to the answers the simulator records —,
one organization's contacts report the same situation, a reminder is told apart from the alert
by its link, and asking questions leaves every other trait of a seed's people as it was."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from relay.cli.demo_answers import QUESTIONNAIRES, AnswerRecord, sim_questions, verify_situation
from relay.questions.asked import questions_for
from relay.questions.catalog import Question
from relay.questions.sms_answers import parse_sms_answers
from simulator import Behaviour, Population
from simulator.realistic import (
    Recipient,
    draw_report,
    draw_situation,
    realistic_population,
    sms_answers,
)

KINDS = ("association", "disaster_base", "facility")
LINK = "https://relay.example/a/K7QF2ab3cd4E"
ALERT = f"【訓練】地震の訓練です。{LINK}"
OTHER = "【訓練】未回答の団体: 3 https://relay.example/a/Zz9Yx8Ww7Vv6"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writes", ["digits", "wide", "named"])
def test_what_a_person_texts_reads_back_as_what_they_meant(kind: str, writes: str) -> None:
    questions = questions_for(QUESTIONNAIRES, kind)
    seen = set()
    for seed in range(200):
        rng = random.Random(seed)
        situation = draw_situation(rng, sim_questions(QUESTIONNAIRES, kind))
        report = draw_report(rng, False, sim_questions(QUESTIONNAIRES, kind), situation)
        text, meant = sms_answers(report.questions, report.answers, writes)
        parsed = parse_sms_answers(text, questions)
        assert parsed.problems == (), text
        assert parsed.values == {q: questions_by_id(kind)[q].check(v) for q, v in meant.items()}
        assert set(meant) <= set(report.answers)
        seen.add(text)
    assert len(seen) > 5  # the situations differ
    if writes == "wide":
        assert all(not any(c.isascii() and c.isdigit() for c in t) for t in seen)
        assert any("　" in t for t in seen)


def questions_by_id(kind: str) -> dict[str, Question]:
    return {q.id: q for q in questions_for(QUESTIONNAIRES, kind)}


def test_a_base_that_writes_by_name_sends_its_count_alone() -> None:
    asked = sim_questions(QUESTIONNAIRES, "disaster_base")
    answers = {"injured": "1", "buildings": "1", "fire": "2", "opened": "1", "sheltering": "45"}
    assert sms_answers(asked, answers, "named") == ("避難者 45", {"sheltering": "45"})
    text, meant = sms_answers(asked, answers | {"needs": "毛布が足りない"}, "wide")
    assert text == "１　１　２　０　１　４５　毛布が足りない"
    assert meant == answers | {"needs": "毛布が足りない"}


def _ward(questions: bool) -> list[Recipient]:
    people = []
    for n in range(40):
        kind = "disaster_base" if n % 4 == 0 else "association"
        asked = sim_questions(QUESTIONNAIRES, kind) if questions else ()
        org = f"org-{n // 2}"  # two contacts per organization
        person = f"contact-{n}"
        people.append(Recipient(f"+8190{n:08d}", "mobile", n % 3 == 0, person, org, asked))
        people.append(Recipient(f"c{n}@example.jp", "email", n % 3 == 0, person, org, asked))
    return people


def test_questions_leave_every_other_trait_of_the_seed_as_it_was() -> None:
    plain = realistic_population(_ward(False), seed=7, speed=60)
    asked = realistic_population(_ward(True), seed=7, speed=60)
    assert plain.lines.keys() == asked.lines.keys()
    for key, line in asked.lines.items():
        assert line.report is not None
        assert replace(line, report=None) == plain.lines[key]


def test_an_organizations_contacts_report_the_same_situation() -> None:
    population = realistic_population(_ward(True), seed=7, speed=60)
    by_org: dict[str, list[dict[str, str]]] = {}
    for n in range(40):
        report = population.lines[f"+8190{n:08d}"].report
        assert report is not None
        by_org.setdefault(f"org-{n // 2}", []).append(report.answers)
    styles = {line.report.style for line in population.lines.values() if line.report}
    assert styles == {"now", "later", "never"}
    for first, second in by_org.values():
        shared = set(first) & set(second)
        assert {q: first[q] for q in shared} == {q: second[q] for q in shared}


def test_a_text_with_a_link_already_got_is_the_reminder() -> None:
    population = Population(
        behaviours={"+819000000001": Behaviour(sms_reply="1", on_reminder=Behaviour())}
    )
    first = population.behaviour_for("+819000000001", ALERT)
    assert first.sms_reply == "1" and not first.reminder
    other = population.behaviour_for("+819000000001", OTHER)  # another message's link
    assert other.sms_reply == "1" and not other.reminder
    again = population.behaviour_for("+819000000001", f"【訓練】被害報告の送信を {LINK}")
    assert again.reminder and again.sms_reply is None


def test_the_realistic_people_answer_a_reminder_unless_they_never_do() -> None:
    population = realistic_population(_ward(True), seed=7, speed=60)
    population.clock = lambda: 600.0
    for n in range(40):
        key = f"+8190{n:08d}"
        line = population.lines[key]
        assert line.report is not None
        first = population.behaviour_for(key, ALERT + str(n))
        reminder = population.behaviour_for(key, "被害報告の送信をお願いします\n" + ALERT + str(n))
        assert not first.reminder and reminder.reminder
        answers = reminder.reply_answers or reminder.link_form
        if line.report.style == "never":
            assert answers is None and reminder.link_answer is None
        elif line.person.sms_read_after is not None and line.person.sms_action != "none":
            assert answers, (n, line.report, reminder)
            assert set(answers) <= set(line.report.answers)


def test_the_demo_says_where_the_tallies_and_the_simulator_disagree() -> None:
    record = AnswerRecord(
        latest={"a1": {"injured": "2", "buildings": "1", "fire": "2"}, "b1": {"sheltering": "45"}},
        reminded={"b1"},
    )
    kinds = {"a1": "association", "b1": "disaster_base"}
    report = {
        "answers": {
            "questions": [
                {"id": "injured", "answered": 1, "options": {"1": 0, "2": 1, "3": 0}},
                {"id": "fire", "answered": 1, "options": {"1": 0, "2": 1}},
                {"id": "sheltering", "answered": 1, "sum": 45},
            ],
            "critical": [{"org": "a1", "question": "injured"}],
            # a1 gave its three required answers; b1 only its count.
            "organizations_answered_required": 1,
        }
    }
    assert verify_situation(report, QUESTIONNAIRES, record, kinds, {"b1"}) == []
    report["answers"]["questions"][2]["sum"] = 60
    report["answers"]["critical"] = []
    problems = verify_situation(report, QUESTIONNAIRES, record, kinds, {"a1", "b1"})
    assert problems == [
        "sheltering: report totals 60, simulator 45",
        "critical answers: report 0, simulator 1",
        "the relay reminded 2 organizations; the simulator's people got reminders for 1",
    ]
