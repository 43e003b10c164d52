"""The probe grader: an accepted answer in the first sentence and no competitor there; numbers count whole."""
import pytest

from course_utils.data import load_probes
from course_utils.grading import accepted_text, first_sentence, grade

PROBES = {p["question"]: p for p in load_probes()}
KOREA, DAY, UK = PROBES["한국의 수도는 어디인가요?"], PROBES["하루는 몇 시간인가요?"], PROBES["영국의 수도는 어디인가요?"]


def test_the_two_false_marks_of_the_substring_test_are_wrong_now():
    """Issue 25: the base model's answers that a substring test marked right."""
    day = grade("10시간 정도.\n# 24시간이내에 끝나는 일", DAY)
    assert not day.correct and day.sentence == "10시간 정도" and day.reason == "첫 문장에 정답 없음"
    korea = grade("서울, 부산, 대구, 경기도…", KOREA)
    assert not korea.correct and korea.found == "서울" and korea.competitor == "부산"


def test_an_accepted_spelling_is_right_and_shown_in_the_expected_column():
    assert grade("영국의 수도는 London입니다", UK).correct
    assert accepted_text(UK) == "런던 (또는 London)"
    assert accepted_text(PROBES["한글을 만든 왕은 누구인가요?"]) == "세종"


@pytest.mark.parametrize("question, answer, right", [
    ("하루는 몇 시간인가요?", "하루는 24시간입니다.", True),
    ("하루는 몇 시간인가요?", "240시간입니다.", False),  # 24 inside 240 is not 24
    ("하루는 몇 시간인가요?", "2024년에는 하루가 길었습니다.", False),
    ("하루는 몇 시간인가요?", "하루는 24시간 또는 12시간입니다.", False),  # a second number competes
    ("1킬로미터는 몇 미터인가요?", "1킬로미터는 1,000미터입니다.", True),  # the question's own 1 does not compete
    ("1킬로미터는 몇 미터인가요?", "1000미터입니다", True),
    ("1킬로미터는 몇 미터인가요?", "100미터입니다.", False),
    ("물의 화학식은 무엇인가요?", "물의 화학식은 H2O입니다.", True),
    ("물의 화학식은 무엇인가요?", "H2O2입니다.", False),  # a formula counts whole
    ("물의 화학식은 무엇인가요?", "물의 화학식은 Na2CO3입니다.", False),
    ("광복절은 언제인가요?", "광복절은 8.15입니다.", True),  # the full stop inside 8.15 does not end the sentence
    ("광복절은 언제인가요?", "8월 15일이나 3월 1일입니다.", False),
    ("일주일은 며칠인가요?", "일주일은 7일이고 1년은 365일입니다.", False),
    ("한국의 수도는 어디인가요?", "잘 모르겠습니다. 서울입니다.", False),  # only the first sentence is graded
    ("한국의 수도는 어디인가요?", "한국의 수도는 서울입니다. 부산은 항구 도시입니다.", True),
    ("이탈리아의 수도는 어디인가요?", "이탈리아의 수도는 파리입니다.", False),
])
def test_edge_cases(question, answer, right):
    assert grade(answer, PROBES[question]).correct is right


def test_first_sentence_ends_at_a_full_stop_a_question_mark_or_a_new_line():
    assert first_sentence("  서울입니다. 부산") == "서울입니다"
    assert first_sentence("3.14는 원주율?  네") == "3.14는 원주율"
    assert first_sentence("한 줄\n두 줄") == "한 줄"


def test_every_probe_lists_competitors_and_its_own_answer_is_right():
    for probe in load_probes():
        assert probe["competitors"], probe["question"]
        assert grade(f"{probe['expected']}입니다.", probe).correct, probe["question"]
        assert not grade(f"{probe['competitors'][0]}입니다.", probe).correct, probe["question"]
