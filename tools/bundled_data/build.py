import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from part1 import QA
from part2 import EXPLAIN, REWRITE
from part3 import CLASSIFY, LISTS, SUMMARY
from part4 import EXPLAIN2, QA2
from part5 import REWRITE2, SUMMARY2
from part6 import CLASSIFY2, LISTS2
from v2.advice import ADVICE
from v2.compare_classify import CLASSIFY as CLASSIFY3
from v2.compare_classify import COMPARE
from v2.explain import EXPLAIN3
from v2.howto import HOWTO
from v2.lists_code import CODE, LISTS3
from v2.qa import QA3
from v2.summary_rewrite import REWRITE3, SUMMARY3

rng = random.Random(7)
def final(n):  # final sound of the Korean reading of n: 'vowel', 'rieul' or 'consonant'
    d = n % 10
    if d == 0:
        return "consonant"  # 십, 백, 천
    return {2: "vowel", 4: "vowel", 5: "vowel", 9: "vowel", 1: "rieul", 7: "rieul", 8: "rieul"}.get(d, "consonant")
def eun(n): return f"{n}{'는' if final(n) == 'vowel' else '은'}"
def eul(n): return f"{n}{'를' if final(n) == 'vowel' else '을'}"
def ro(n): return f"{n}{'로' if final(n) in ('vowel', 'rieul') else '으로'}"
def add():
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return (f"{a} 더하기 {eun(b)} 얼마인가요?", "", f"{a} 더하기 {eun(b)} {a + b}입니다.")
def sub():
    a, b = rng.randint(50, 199), rng.randint(10, 49)
    return (f"{a}에서 {eul(b)} 빼면 얼마인가요?", "", f"{a}에서 {eul(b)} 빼면 {a - b}입니다.")
def mul():
    a, b = rng.randint(2, 19), rng.randint(2, 9)
    return (f"{a} 곱하기 {eun(b)} 얼마인가요?", "", f"{a} 곱하기 {eun(b)} {a * b}입니다.")
def div():
    b, q = rng.randint(2, 9), rng.randint(3, 15)
    return (f"{eul(b * q)} {ro(b)} 나누면 얼마인가요?", "", f"{eul(b * q)} {ro(b)} 나누면 {q}입니다.")
ARITH = ([add() for _ in range(8)] + [sub() for _ in range(7)] + [mul() for _ in range(7)]
         + [div() for _ in range(4)])
word = [
    ("사과가 한 상자에 12개씩 들어 있습니다. 3상자에는 사과가 모두 몇 개인가요?", "", "12 × 3 = 36이므로 사과는 모두 36개입니다."),
    ("연필 한 자루가 500원입니다. 연필 4자루를 사려면 얼마가 필요한가요?", "", "500 × 4 = 2,000이므로 2,000원이 필요합니다."),
    ("버스가 오전 9시에 출발해서 2시간 30분 뒤에 도착했습니다. 도착 시각은 언제인가요?", "", "오전 9시에서 2시간 30분이 지나면 오전 11시 30분입니다."),
    ("민지는 사탕 20개 중 7개를 친구에게 주었습니다. 남은 사탕은 몇 개인가요?", "", "20 - 7 = 13이므로 남은 사탕은 13개입니다."),
    ("한 반에 학생이 24명 있고 4명씩 모둠을 만들면 모둠은 몇 개인가요?", "", "24 ÷ 4 = 6이므로 모둠은 6개입니다."),
    ("시속 60킬로미터로 2시간 달리면 몇 킬로미터를 가나요?", "", "60 × 2 = 120이므로 120킬로미터를 갑니다."),
]
ARITH += word
ARITH2 = []  # second batch: drawn after the first, so the first batch's numbers do not change
def draw(n, make):  # n new problems; a question already asked is drawn again
    seen = {r[0] for r in ARITH + ARITH2}
    while n:
        rec = make()
        if rec[0] not in seen:
            ARITH2.append(rec)
            seen.add(rec[0])
            n -= 1
draw(15, add)
draw(14, sub)
draw(14, mul)
draw(8, div)
ARITH2 += [
    ("공책 한 권이 1,200원입니다. 공책 3권을 사면 모두 얼마인가요?", "", "1,200 × 3 = 3,600이므로 모두 3,600원입니다."),
    ("귤 30개를 5명이 똑같이 나누면 한 사람이 몇 개를 받나요?", "", "30 ÷ 5 = 6이므로 한 사람이 6개를 받습니다."),
    ("도서관에 책이 150권 있었는데 45권을 빌려 갔습니다. 남은 책은 몇 권인가요?", "", "150 - 45 = 105이므로 남은 책은 105권입니다."),
    ("하루에 물을 8컵씩 마시면 일주일 동안 몇 컵을 마시나요?", "", "8 × 7 = 56이므로 일주일 동안 56컵을 마십니다."),
    ("영화가 오후 2시 40분에 시작해서 1시간 50분 동안 상영됩니다. 끝나는 시각은 언제인가요?", "", "오후 2시 40분에서 1시간 50분이 지나면 오후 4시 30분입니다."),
    ("가로 8센티미터, 세로 5센티미터인 직사각형의 넓이는 얼마인가요?", "", "8 × 5 = 40이므로 넓이는 40제곱센티미터입니다."),
    ("한 변이 6센티미터인 정사각형의 둘레는 얼마인가요?", "", "6 × 4 = 24이므로 둘레는 24센티미터입니다."),
    ("10,000원을 내고 6,500원짜리 책을 샀습니다. 거스름돈은 얼마인가요?", "", "10,000 - 6,500 = 3,500이므로 거스름돈은 3,500원입니다."),
    ("닭 5마리의 다리는 모두 몇 개인가요?", "", "닭 한 마리의 다리는 2개이므로 2 × 5 = 10, 모두 10개입니다."),
    ("한 시간에 4킬로미터를 걷는 사람이 3시간 걸으면 몇 킬로미터를 가나요?", "", "4 × 3 = 12이므로 12킬로미터를 갑니다."),
    ("어떤 수에 7을 더했더니 20이 되었습니다. 어떤 수는 얼마인가요?", "", "20 - 7 = 13이므로 어떤 수는 13입니다."),
    ("초콜릿 48개를 한 상자에 8개씩 담으면 몇 상자가 필요한가요?", "", "48 ÷ 8 = 6이므로 6상자가 필요합니다."),
]
cats = {"qa": QA + QA2, "explain": EXPLAIN + EXPLAIN2, "rewrite": REWRITE + REWRITE2, "summary": SUMMARY + SUMMARY2,
        "classify": CLASSIFY + CLASSIFY2, "lists": LISTS + LISTS2, "arith": ARITH + ARITH2}
PROBES = [  # (question, expected substring)
 ("한국의 수도는 어디인가요?", "서울"), ("일본의 수도는 어디인가요?", "도쿄"), ("프랑스의 수도는 어디인가요?", "파리"),
 ("영국의 수도는 어디인가요?", "런던"), ("중국의 수도는 어디인가요?", "베이징"), ("이탈리아의 수도는 어디인가요?", "로마"),
 ("태양계에서 가장 큰 행성은 무엇인가요?", "목성"), ("지구에서 가장 넓은 바다는 무엇인가요?", "태평양"),
 ("한글을 만든 왕은 누구인가요?", "세종"), ("일주일은 며칠인가요?", "7"), ("하루는 몇 시간인가요?", "24"),
 ("1년은 몇 개월인가요?", "12"), ("한국의 화폐 단위는 무엇인가요?", "원"), ("한국에서 가장 높은 산은 무엇인가요?", "한라산"),
 ("물의 화학식은 무엇인가요?", "H2O"), ("대한민국의 국화는 무엇인가요?", "무궁화"),
 ("사람의 몸에서 피를 온몸으로 보내는 기관은 무엇인가요?", "심장"), ("세계에서 가장 높은 산은 무엇인가요?", "에베레스트"),
 ("거미의 다리는 몇 개인가요?", "8"), ("축구 경기에서 한 팀은 몇 명이 뛰나요?", "11"),
 ("1킬로미터는 몇 미터인가요?", "1,000"), ("광복절은 언제인가요?", "8월 15일"),
]
# Each probe asked three more ways (notebook 06: does the answer survive rephrasing?), and the other spellings an
# answer may use. Written for the course; none of these questions is in the training or held-out files.
PARAPHRASES = {
 "한국의 수도는 어디인가요?": ["대한민국의 수도가 어디인지 알려 주세요.", "한국의 수도 이름은 무엇인가요?",
                        "한국에서 수도 역할을 하는 도시는 어디인가요?"],
 "일본의 수도는 어디인가요?": ["일본의 수도가 어디인지 알려 주세요.", "일본의 수도 이름은 무엇인가요?",
                        "일본이라는 나라의 수도는 어느 도시인가요?"],
 "프랑스의 수도는 어디인가요?": ["프랑스의 수도가 어디인지 알려 주세요.", "프랑스의 수도 이름은 무엇인가요?",
                         "프랑스라는 나라의 수도는 어느 도시인가요?"],
 "영국의 수도는 어디인가요?": ["영국의 수도가 어디인지 알려 주세요.", "영국의 수도 이름은 무엇인가요?",
                        "영국이라는 나라의 수도는 어느 도시인가요?"],
 "중국의 수도는 어디인가요?": ["중국의 수도가 어디인지 알려 주세요.", "중국의 수도 이름은 무엇인가요?",
                        "중국이라는 나라의 수도는 어느 도시인가요?"],
 "이탈리아의 수도는 어디인가요?": ["이탈리아의 수도가 어디인지 알려 주세요.", "이탈리아의 수도 이름은 무엇인가요?",
                          "이탈리아라는 나라의 수도는 어느 도시인가요?"],
 "태양계에서 가장 큰 행성은 무엇인가요?": ["태양계 행성 중 크기가 가장 큰 것은 무엇인가요?", "가장 큰 태양계 행성의 이름을 알려 주세요.",
                              "태양계에서 제일 큰 행성은 어느 것인가요?"],
 "지구에서 가장 넓은 바다는 무엇인가요?": ["지구에서 면적이 가장 넓은 바다는 어디인가요?", "세계에서 가장 큰 바다의 이름은 무엇인가요?",
                              "지구의 바다 가운데 제일 넓은 것은 무엇인가요?"],
 "한글을 만든 왕은 누구인가요?": ["한글을 창제한 왕은 누구인가요?", "훈민정음을 만든 조선의 왕은 누구인가요?",
                         "한글을 만든 임금의 이름을 알려 주세요."],
 "일주일은 며칠인가요?": ["한 주는 며칠로 되어 있나요?", "일주일에는 날이 몇 개 있나요?", "일주일은 모두 며칠인지 알려 주세요."],
 "하루는 몇 시간인가요?": ["하루는 모두 몇 시간인가요?", "하루 동안의 시간은 몇 시간인지 알려 주세요.",
                      "하루를 시간으로 나타내면 몇 시간인가요?"],
 "1년은 몇 개월인가요?": ["일 년은 몇 달인가요?", "한 해는 몇 개월로 되어 있나요?", "1년은 모두 몇 달인지 알려 주세요."],
 "한국의 화폐 단위는 무엇인가요?": ["한국 돈의 단위는 무엇인가요?", "대한민국에서 쓰는 화폐 단위를 알려 주세요.",
                          "한국의 돈은 어떤 단위로 세나요?"],
 "한국에서 가장 높은 산은 무엇인가요?": ["한국에서 제일 높은 산은 어디인가요?", "대한민국에서 가장 높은 산의 이름은 무엇인가요?",
                             "남한에서 가장 높은 산은 무엇인가요?"],
 "물의 화학식은 무엇인가요?": ["물을 화학식으로 쓰면 무엇인가요?", "물의 분자식은 무엇인가요?", "물을 나타내는 화학식을 알려 주세요."],
 "대한민국의 국화는 무엇인가요?": ["한국의 나라꽃은 무엇인가요?", "대한민국을 상징하는 꽃은 무엇인가요?",
                          "한국의 국화인 나라꽃의 이름을 알려 주세요."],
 "사람의 몸에서 피를 온몸으로 보내는 기관은 무엇인가요?": ["우리 몸에서 혈액을 온몸으로 보내는 기관은 무엇인가요?",
                                       "피를 온몸에 펌프질하는 기관의 이름은 무엇인가요?",
                                       "사람 몸에서 혈액을 순환시키는 기관은 무엇인가요?"],
 "세계에서 가장 높은 산은 무엇인가요?": ["세계에서 제일 높은 산은 무엇인가요?", "지구에서 가장 높은 산의 이름을 알려 주세요.",
                             "세상에서 가장 높은 산은 어디인가요?"],
 "거미의 다리는 몇 개인가요?": ["거미는 다리가 몇 개인가요?", "거미 한 마리의 다리 수는 몇 개인가요?",
                        "거미의 다리는 모두 몇 개인지 알려 주세요."],
 "축구 경기에서 한 팀은 몇 명이 뛰나요?": ["축구에서 한 팀의 선수는 몇 명인가요?", "축구 경기에 한 팀당 몇 명이 출전하나요?",
                               "축구 시합에서 한 팀은 몇 명으로 뛰나요?"],
 "1킬로미터는 몇 미터인가요?": ["1km는 몇 m인가요?", "1킬로미터를 미터로 바꾸면 얼마인가요?", "1킬로미터는 모두 몇 미터인지 알려 주세요."],
 "광복절은 언제인가요?": ["광복절은 몇 월 며칠인가요?", "광복절 날짜를 알려 주세요.", "한국의 광복절은 언제인가요?"],
}
COMPETITORS = {  # the other candidates a probe's first sentence must not name (grading.grade): wrong if it does
 "한국의 수도는 어디인가요?": ["부산", "대구", "인천", "광주", "대전", "울산", "경기도", "세종", "평양", "도쿄", "베이징"],
 "일본의 수도는 어디인가요?": ["오사카", "교토", "요코하마", "나고야", "서울", "베이징"],
 "프랑스의 수도는 어디인가요?": ["런던", "로마", "마르세유", "리옹", "니스", "베를린"],
 "영국의 수도는 어디인가요?": ["파리", "맨체스터", "리버풀", "에든버러", "더블린", "뉴욕"],
 "중국의 수도는 어디인가요?": ["상하이", "홍콩", "난징", "광저우", "타이베이", "서울", "도쿄"],
 "이탈리아의 수도는 어디인가요?": ["밀라노", "베네치아", "나폴리", "피렌체", "파리", "마드리드"],
 "태양계에서 가장 큰 행성은 무엇인가요?": ["토성", "지구", "화성", "금성", "수성", "천왕성", "해왕성", "태양"],
 "지구에서 가장 넓은 바다는 무엇인가요?": ["대서양", "인도양", "북극해", "남극해", "지중해"],
 "한글을 만든 왕은 누구인가요?": ["태조", "이성계", "세조", "영조", "정조", "광개토"],
 "일주일은 며칠인가요?": ["여섯", "여덟"],
 "하루는 몇 시간인가요?": ["열두"],
 "1년은 몇 개월인가요?": ["열한", "열세"],
 "한국의 화폐 단위는 무엇인가요?": ["달러", "엔", "위안", "유로", "파운드"],
 "한국에서 가장 높은 산은 무엇인가요?": ["백두산", "지리산", "설악산", "북한산", "에베레스트"],
 "물의 화학식은 무엇인가요?": ["H2O2", "CO2", "NaCl", "Na2CO3", "O2", "HCl", "CH4"],
 "대한민국의 국화는 무엇인가요?": ["장미", "벚꽃", "진달래", "개나리", "해바라기", "튤립"],
 "사람의 몸에서 피를 온몸으로 보내는 기관은 무엇인가요?": ["폐", "허파", "뇌", "신장", "콩팥"],
 "세계에서 가장 높은 산은 무엇인가요?": ["한라산", "백두산", "K2", "킬리만자로", "후지산", "몽블랑"],
 "거미의 다리는 몇 개인가요?": ["여섯"],
 "축구 경기에서 한 팀은 몇 명이 뛰나요?": ["열두"],
 "1킬로미터는 몇 미터인가요?": ["백 미터", "만 미터"],
 "광복절은 언제인가요?": ["3월 1일", "10월 3일", "10월 9일", "6월 6일", "7월 17일", "6월 25일"],
}
ACCEPT = {"서울": ["Seoul"], "도쿄": ["Tokyo"], "파리": ["Paris"], "런던": ["London"], "베이징": ["북경", "Beijing"],
          "로마": ["Rome"], "목성": ["Jupiter"], "태평양": ["Pacific"], "7": ["일곱"], "24": ["스물네"], "12": ["열두"],
          "H2O": ["H₂O"], "에베레스트": ["Everest"], "8": ["여덟"], "11": ["열한"], "1,000": ["1000", "천 미터"],
          "8월 15일": ["8.15", "8·15"]}  # the same answer in English or another spelling is right
assert set(PARAPHRASES) == set(COMPETITORS) == {q for q, _ in PROBES} and all(len(v) == 3 for v in PARAPHRASES.values())
probe_q = {q for q, _ in PROBES}
assert probe_q <= {r[0] for r in QA}, probe_q - {r[0] for r in QA}
train, held = [], []
for kind, recs in cats.items():
    for i, (ins, inp, out) in enumerate(recs):
        rec = {"instruction": ins, "input": inp, "output": out, "kind": kind}
        if ins in probe_q:
            continue  # probe questions are asked, never trained on nor part of the loss sets
        if i % 7 == 3:
            held.append(rec)
        else:
            train.append(rec)
for i, r in enumerate(held):  # dev: every choice (best checkpoint, decoding, 09's search); test: only reported
    r["split"] = "dev" if i % 2 == 0 else "test"  # alternating inside each kind, so both splits hold every kind
keys = [(r["instruction"], r["input"]) for r in train + held]
assert len(keys) == len(set(keys)), "duplicate"
print(len(train), len(held), len(train) + len(held), {k: len(v) for k, v in cats.items()})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "course_utils", "data")
os.makedirs(out, exist_ok=True)
for fn, rs in [("ko_instructions_train.jsonl", train), ("ko_instructions_heldout.jsonl", held)]:
    with open(f"{out}/{fn}", "w", encoding="utf-8") as f:
        for r in rs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
with open(f"{out}/probes.jsonl", "w", encoding="utf-8") as f:
    for q, a in PROBES:
        probe = {"question": q, "expected": a, "accept": ACCEPT.get(a, []), "paraphrases": PARAPHRASES[q],
                 "competitors": COMPETITORS[q], "split": "test"}  # only asked and reported, never chosen on
        f.write(json.dumps(probe, ensure_ascii=False) + "\n")
# The same records in KoAlpaca v1.1's layout (what `beomi/KoAlpaca-v1.1a` holds): {instruction, output, url} per line,
# no `input` (v1.1 writes the whole question into the instruction), no `kind`; and, as real KoAlpaca dumps have,
# one exact duplicate and one empty answer, which reading must skip and count. The `smoke` profile trains on this
# file as gpu8gb trains on the hub copy, held-out records split off it (course_utils/data/README.md).
picked = [r for kind in cats for r in train if r["kind"] == kind][::8]
koalpaca = [{"instruction": f"{r['instruction']}\n{r['input']}" if r["input"] else r["instruction"],
             "output": r["output"], "url": ""} for r in picked]
koalpaca.insert(11, dict(koalpaca[3]))  # a duplicate
koalpaca.insert(29, {"instruction": "이 문장을 존댓말로 바꿔 주세요.\n밥 먹었어?", "output": "", "url": ""})  # empty answer
with open(f"{out}/koalpaca_v1_1_format.jsonl", "w", encoding="utf-8") as f:
    for r in koalpaca:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print("koalpaca_v1_1_format.jsonl", len(koalpaca))

# Bundled v2 (issue 44): every record above plus a third batch written like real instructions (answers of 2-6
# sentences that explain, and the kinds real KoAlpaca has: how-to, compare, advice, short code). One file, each record
# with its kind and split. A record of the first two batches keeps the split it has above (train, or its dev or
# test); the third batch is split the same way inside each kind (every seventh held out, dev and test alternating).
V2 = {"qa": QA3, "explain": EXPLAIN3, "howto": HOWTO, "compare": COMPARE, "advice": ADVICE, "rewrite": REWRITE3,
      "summary": SUMMARY3, "classify": CLASSIFY3, "lists": LISTS3, "code": CODE}
v2 = [dict(r, split="train") for r in train] + [dict(r) for r in held]
for kind, recs in V2.items():
    assert not {r[0] for r in recs} & probe_q, f"{kind}: a probe question in the third batch"
    for i, (ins, inp, ans) in enumerate(recs):
        split = "train" if i % 7 != 3 else ("dev" if (i // 7) % 2 == 0 else "test")
        v2.append({"instruction": ins, "input": inp, "output": ans, "kind": kind, "split": split})
keys = [(r["instruction"], r["input"]) for r in v2]
assert len(keys) == len(set(keys)), [k for k in keys if keys.count(k) > 1][:3]
with open(f"{out}/ko_instructions_v2.jsonl", "w", encoding="utf-8") as f:
    for r in v2:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print("ko_instructions_v2.jsonl", len(v2), {s: sum(r["split"] == s for r in v2) for s in ("train", "dev", "test")})
