"""Korean purity (course_utils.purity, notebooks 06 and 10): which answers drift out of Korean."""
import pytest

from course_utils.purity import drift, drifted


@pytest.mark.parametrize("answer,question,reason", [
    ("한국의 수도는 서울입니다.", "", None),
    ("한국의 首都는 서울입니다.", "", "한자 首都"),  # Chinese characters in a Korean answer
    ("한자 '人'은 사람을 뜻합니다.", "한자 '人'은 무슨 뜻인가요?", None),  # the question asked about it
    ("東京은 일본의 수도입니다. とうきょう", "東京은 어디인가요?", "가나 とうきょ"),
    ("'감사합니다'는 영어로 Thank you입니다.", "", None),  # a short phrase: a name or a term
    ("뉴욕은 New York City라고 씁니다.", "", None),
    ("The capital of Korea is Seoul.", "", "로마자 6단어 'The capital of Korea is Seoul'"),
    ("Write a short poem", "다음을 번역하세요: Write a short poem", None),  # the question's own text
    ("I live in the city of Seoul.", "다음 문장을 영어로 번역하세요.\n나는 서울에 산다.", None),  # asked for English
    ("I live in the city of Seoul.", "다음 문장을 일본어로 번역하세요.\n나는 서울에 산다.", "로마자 7단어 'I live in the city of Seoul'"),
    ('코드: print("hello world") 입니다.', "", None),  # a line of code
    ("다음과 같습니다:\nfor i in range(10):\n    total = total + i", "", None),
    ("import numpy as np", "", None),
    ("주요 부품은 CPU, GPU, RAM, SSD입니다.", "", None),  # a list of acronyms, not a sentence
    ("가운뎃점・을 씁니다.", "", None),  # U+30FB, used in Korean text too
])
def test_drift_names_what_left_korean(answer, question, reason):
    assert drift(answer, question) == reason


def test_drifted_lists_the_index_and_reason_of_each():
    answers = ["서울입니다.", "北京입니다.", "I do not know the answer here."]
    assert drifted(answers, ["", "", ""]) == [(1, "한자 北京"), (2, "로마자 7단어 'I do not know the answer here'")]
    with pytest.raises(ValueError):
        drifted(answers, [""])
