"""Exercise sections (연습 문제) of notebooks 01-07 and their solution notebooks (notebooks/solutions/).

Each exercise: (level, task in Korean, the learner's cell, the solution's cell). The learner's
cell leaves ``answer = None``; the check prints "아직" until it is filled. A solution cell computes
the answer with course_utils and asserts that the check says "정답" (nbval runs them).
"""
from __future__ import annotations

from nbtools import code, md

INTRO = """
## 연습 문제

`answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/{nn}_solutions.ipynb`에 있습니다.
"""

EXERCISES = {
    "01": [
        ("기초", "GPT-2 124M의 모든 가중치를 fp16으로 저장하면 몇 MiB일까요? (`count_params`, `meta_model`)",
         "from course_utils.exercises import check_01_basic\n\nanswer = None  # MiB\ncheck_01_basic(answer)",
         "from course_utils.exercises import check_01_basic\nfrom course_utils.models import count_params, meta_model\n\n"
         "answer = count_params(meta_model('gpt2')).total * 2 / 2**20\nassert check_01_basic(answer)"),
        ("응용", "TinyLlama QLoRA(seq 512, batch 1)에서 그래디언트 체크포인팅을 끄면 활성화 메모리는 몇 배가 될까요?",
         "from course_utils.exercises import check_01_applied\n\nanswer = None  # ratio off / on\ncheck_01_applied(answer)",
         "from course_utils.exercises import check_01_applied\nfrom course_utils.vram import estimate_vram\n\n"
         "on = estimate_vram('tinyllama-1.1b', 'qlora', 512, 1, gradient_checkpointing=True).terms['activations']\n"
         "off = estimate_vram('tinyllama-1.1b', 'qlora', 512, 1, gradient_checkpointing=False).terms['activations']\n"
         "answer = off / on\nassert check_01_applied(answer)"),
        ("도전", "Phi-2를 LoRA(fp16 가중치, seq 512, 체크포인팅 켬)로 학습할 때 8 GiB에 들어가는 가장 큰 batch_size는?",
         "from course_utils.exercises import check_01_challenge\n\nanswer = None  # batch size\ncheck_01_challenge(answer)",
         "from course_utils.exercises import check_01_challenge\nfrom course_utils.vram import estimate_vram\n\n"
         "answer = 1\nwhile estimate_vram('phi-2', 'lora', 512, answer + 1, gradient_checkpointing=True).total <= 8 * 2**30:\n"
         "    answer += 1\nassert check_01_challenge(answer)"),
    ],
    "02": [
        ("기초", "4096×4096 행렬을 nf4 + 이중 양자화로 저장하면 상수까지 몇 MiB일까요?",
         "from course_utils.exercises import check_02_basic\n\nanswer = None  # MiB\ncheck_02_basic(answer)",
         "from course_utils.exercises import check_02_basic\nfrom course_utils.vram import weight_bytes\n\n"
         "data, constants = weight_bytes(4096 * 4096, 'nf4', double_quant=True)\nanswer = (data + constants) / 2**20\n"
         "assert check_02_basic(answer)"),
        ("응용", "`seed_matrix()`를 blocksize 64와 256으로 nf4 양자화하면 평균 절대 오차가 더 작은 blocksize는?",
         "from course_utils.exercises import check_02_applied, seed_matrix\n\nanswer = None  # 64 or 256\ncheck_02_applied(answer)",
         "from course_utils.exercises import check_02_applied, seed_matrix\nfrom course_utils.quantization import quantize_nf4\n\n"
         "errors = {b: quantize_nf4(seed_matrix(), blocksize=b).mean_abs_error for b in (64, 256)}\n"
         "answer = min(errors, key=errors.get)\nassert check_02_applied(answer)"),
        ("도전", "`seed_matrix()`에서 nf4의 상대 오차는 int8의 몇 배일까요?",
         "from course_utils.exercises import check_02_challenge\n\nanswer = None  # nf4 / int8\ncheck_02_challenge(answer)",
         "from course_utils.exercises import check_02_challenge, seed_matrix\n"
         "from course_utils.quantization import quantize_int8, quantize_nf4\n\n"
         "answer = quantize_nf4(seed_matrix()).relative_error / quantize_int8(seed_matrix()).relative_error\n"
         "assert check_02_challenge(answer)"),
    ],
    "03": [
        ("기초", "이 프로필의 모델에 r=16 LoRA(attention)를 붙이면 어댑터 텐서는 몇 바이트(fp32)일까요? "
                 "확인 함수가 실제로 저장한 파일 크기와도 비교해 줍니다.",
         "from course_utils.exercises import check_03_basic\n\nanswer = None  # bytes\ncheck_03_basic(answer, profile.model, r=16)",
         "from course_utils.exercises import check_03_basic\nfrom course_utils.lora import adapter_shapes, discover_targets\n"
         "from course_utils.models import meta_model\n\nshape_model = meta_model(profile.model)\n"
         "shapes = adapter_shapes(shape_model, discover_targets(shape_model, 'attention'), 16)\n"
         "answer = 4 * sum(a * b for _, (a, b) in shapes)\nassert check_03_basic(answer, profile.model, r=16)"),
        ("응용", "처음 보는 구조(`unseen_model()`, GPT-NeoX)에서 attention 선형층의 `target_modules` 이름을 찾으세요.",
         "from course_utils.exercises import check_03_applied, unseen_model\n\nprint(unseen_model())\n"
         "answer = None  # e.g. ['name_a', 'name_b']\ncheck_03_applied(answer)",
         "from course_utils.exercises import check_03_applied, unseen_model\nfrom course_utils.lora import find_linear_layers\n\n"
         "answer = sorted({l.name.split('.')[-1] for l in find_linear_layers(unseen_model()) if l.in_attention})\n"
         "print(answer)\nassert check_03_applied(answer)"),
        ("도전", "SmolLM2-135M에 r=8 LoRA를 모든 선형층(all-linear)에 붙이면 학습 파라미터는 몇 개일까요?",
         "from course_utils.exercises import check_03_challenge\n\nanswer = None  # count\ncheck_03_challenge(answer)",
         "from course_utils.exercises import check_03_challenge\nfrom course_utils.lora import adapter_shapes, discover_targets\n"
         "from course_utils.models import meta_model\n\nsmol = meta_model('smollm2-135m-instruct')\n"
         "answer = sum(a * b for _, (a, b) in adapter_shapes(smol, discover_targets(smol, 'all-linear'), 8))\n"
         "assert check_03_challenge(answer)"),
    ],
    "04": [
        ("기초", "`EXAMPLE_RECORD`를 koalpaca 템플릿으로 인코딩하면 레이블이 -100인(마스킹된) 토큰은 몇 개일까요?",
         "from course_utils.exercises import EXAMPLE_RECORD, check_04_basic\n\nprint(EXAMPLE_RECORD)\n"
         "answer = None  # masked tokens\ncheck_04_basic(answer, tokenizer)",
         "from course_utils.exercises import EXAMPLE_RECORD, check_04_basic\nfrom course_utils.prompts import encode\n\n"
         "answer = encode(EXAMPLE_RECORD, tokenizer)['labels'].count(-100)\nassert check_04_basic(answer, tokenizer)"),
        ("응용", "템플릿을 바꿔 봅니다: 프롬프트 앞에 `SYSTEM_LINE`을 붙이면 마스킹되는 토큰이 몇 개 늘어날까요? "
                 "답변 쪽 레이블은 바뀌지 않아야 합니다.",
         "from course_utils.exercises import SYSTEM_LINE, check_04_applied\n\nprint(repr(SYSTEM_LINE))\n"
         "answer = None  # extra masked tokens\ncheck_04_applied(answer, tokenizer)",
         "from course_utils.exercises import EXAMPLE_RECORD, SYSTEM_LINE, check_04_applied\n"
         "from course_utils.prompts import format_koalpaca, prompt_ids\n\nprompt, _ = format_koalpaca(EXAMPLE_RECORD)\n"
         "answer = len(prompt_ids(SYSTEM_LINE + prompt, tokenizer)) - len(prompt_ids(prompt, tokenizer))\n"
         "assert check_04_applied(answer, tokenizer)"),
        ("도전", "번들 학습 데이터 중 64 토큰을 넘어 잘리는 레코드의 비율(0~1)은?",
         "from course_utils.exercises import check_04_challenge\n\nanswer = None  # share 0..1\ncheck_04_challenge(answer, tokenizer)",
         "from course_utils.data import BUNDLED_TRAIN, read_records\nfrom course_utils.exercises import check_04_challenge\n"
         "from course_utils.prompts import encode\n\nrecords = read_records(BUNDLED_TRAIN)\n"
         "answer = sum(encode(r, tokenizer)['length'] > 64 for r in records) / len(records)\n"
         "assert check_04_challenge(answer, tokenizer)"),
    ],
    "05": [
        ("기초", "이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝은 몇 번일까요? "
                 "(`meta`는 어댑터 메타데이터: 학습 레코드 수가 들어 있습니다)",
         "from course_utils.exercises import check_05_basic\nfrom course_utils.inference import read_adapter_metadata\n\n"
         "meta = read_adapter_metadata(result.adapter_dir)\nanswer = None  # optimizer steps\ncheck_05_basic(answer, profile, meta)",
         "import math\nfrom course_utils.exercises import check_05_basic\n\n"
         "answer = math.ceil(meta['train_records'] / (profile.batch_size * profile.grad_accum))\n"
         "assert check_05_basic(answer, profile, meta)"),
        ("응용", "학습 후 held-out 답변 손실의 퍼플렉서티(perplexity)는?",
         "from course_utils.exercises import check_05_applied\n\nanswer = None  # perplexity\ncheck_05_applied(answer, meta)",
         "import math\nfrom course_utils.exercises import check_05_applied\n\n"
         "answer = math.exp(meta['heldout_loss_after'])\nassert check_05_applied(answer, meta)"),
        ("도전", "이번 실행의 tokens/s로, 학습 데이터 3 에폭에 몇 초가 걸릴지 예측하세요 (`prepare_data`로 토큰을 세어 보세요).",
         "from course_utils.exercises import check_05_challenge\n\nanswer = None  # seconds\n"
         "check_05_challenge(answer, profile, meta, tokenizer)",
         "from course_utils.exercises import check_05_challenge\nfrom course_utils.train import prepare_data\n\n"
         "train_set, _, _ = prepare_data(profile, tokenizer)\n"
         "answer = 3 * sum(len(e['input_ids']) for e in train_set) / meta['tokens_per_second']\n"
         "assert check_05_challenge(answer, profile, meta, tokenizer)"),
    ],
    "06": [
        ("기초", "탐욕 생성(`do_sample=False`)으로 같은 질문을 두 번 하면 같은 답이 나올까요? (True / False)",
         "from course_utils.exercises import check_06_basic\n\nanswer = None  # True or False\ncheck_06_basic(answer, model, tokenizer)",
         "from course_utils.exercises import check_06_basic\nfrom course_utils.inference import answer_with_stats\n\n"
         "a, b = (answer_with_stats(model, tokenizer, '한국의 수도는 어디인가요?', max_new_tokens=16)['answer'] for _ in range(2))\n"
         "answer = a == b\nassert check_06_basic(answer, model, tokenizer)"),
        ("응용", "어댑터를 끈 상태(`with model.disable_adapter():`)에서 탐침 질문 처음 5개 중 몇 개를 맞힐까요?",
         "from course_utils.exercises import check_06_applied\n\nanswer = None  # correct answers out of 5\n"
         "check_06_applied(answer, model, tokenizer)",
         "from course_utils.data import load_probes\nfrom course_utils.exercises import check_06_applied\n"
         "from course_utils.inference import run_probes\n\nwith model.disable_adapter():\n"
         "    answer = sum(r.correct for r in run_probes(model, tokenizer, load_probes()[:5]))\n"
         "assert check_06_applied(answer, model, tokenizer)"),
        ("도전", "held-out 처음 4개 레코드의 답변 손실은 어댑터를 켜면 끌 때보다 몇 % 줄어들까요?",
         "from course_utils.exercises import check_06_challenge\n\nanswer = None  # percent\n"
         "check_06_challenge(answer, model, tokenizer)",
         "from course_utils.data import load_heldout\nfrom course_utils.exercises import check_06_challenge\n"
         "from course_utils.prompts import encode, pad_id\nfrom course_utils.train import heldout_loss\n\n"
         "examples = [encode(r, tokenizer) for r in load_heldout()[:4]]\non = heldout_loss(model, examples, pad_id(tokenizer))\n"
         "with model.disable_adapter():\n    off = heldout_loss(model, examples, pad_id(tokenizer))\n"
         "answer = 100 * (1 - on / off)\nassert check_06_challenge(answer, model, tokenizer)"),
    ],
    "07": [
        ("기초", "병합 모델 폴더(`out_dir`)의 가중치 파일 크기를 파라미터 수로 예측하세요 (MiB).",
         "from course_utils.exercises import check_07_basic\n\nanswer = None  # MiB\ncheck_07_basic(answer, out_dir)",
         "from course_utils.exercises import check_07_basic\n\n"
         "answer = sum(p.numel() for p in merged.parameters()) * 4 / 2**20  # parameters() lists tied weights once\n"
         "assert check_07_basic(answer, out_dir)"),
        ("응용", "병합 검사가 실패하게 만들어 보세요: LoRA B를 바꾼 다른 어댑터를 병합하면 검사가 잡아내야 합니다.",
         "from course_utils.exercises import check_07_applied\n\nwrong_merged = None  # a model merged from another adapter\n"
         "check_07_applied(wrong_merged, reference, mask, examples, pad, TOLERANCE)",
         "import torch\nfrom course_utils.exercises import check_07_applied\n\n"
         "other, _, _ = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)\n"
         "torch.manual_seed(0)\nwith torch.no_grad():\n    for name, p in other.named_parameters():\n"
         "        if 'lora_B' in name:\n            p.normal_(0, 0.05)\nwrong_merged = other.merge_and_unload()\n"
         "assert check_07_applied(wrong_merged, reference, mask, examples, pad, TOLERANCE)"),
        ("도전", "병합하면 기본 모델의 가중치 텐서 중 몇 개가 바뀔까요? 병합 전 어댑터 모델(`fresh`)로 확인합니다.",
         "from course_utils.exercises import check_07_challenge\n\n"
         "fresh, _, _ = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)\n"
         "answer = None  # changed weight tensors\ncheck_07_challenge(answer, fresh)",
         "import torch\nfrom course_utils.exercises import check_07_challenge\nfrom course_utils.loading import load_model\n\n"
         "fresh, _, _ = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)\n"
         "before = {k: v.clone() for k, v in load_model(profile.model, dtype=MERGE_DTYPE).state_dict().items()}\n"
         "after = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)[0].merge_and_unload().state_dict()\n"
         "answer = sum(not torch.equal(before[k], after[k]) for k in before)\nassert check_07_challenge(answer, fresh)"),
    ],
}

# What a solution notebook needs before its exercises (notebook 0N's objects), run from notebooks/solutions/
CONTEXT = {
    "03": "", "01": "", "02": "",
    "04": "from course_utils.loading import load_tokenizer\n\ntokenizer = load_tokenizer(profile.model)",
    "05": "from pathlib import Path\nfrom course_utils.inference import ensure_adapter, read_adapter_metadata\n"
          "from course_utils.loading import load_tokenizer\n\n"
          "adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)\n"
          "meta = read_adapter_metadata(adapter_dir)\ntokenizer = load_tokenizer(profile.model)",
    "06": "from pathlib import Path\nfrom course_utils.inference import ensure_adapter, load_adapter_model\n\n"
          "adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)\n"
          "model, tokenizer, meta = load_adapter_model(adapter_dir, profile)",
    "07": "from pathlib import Path\nimport torch\nfrom course_utils.data import load_heldout\n"
          "from course_utils.inference import ensure_adapter, load_adapter_model\n"
          "from course_utils.merge import batch_logits, save_merged\nfrom course_utils.prompts import encode, pad_id\n\n"
          "MERGE_DTYPE, TOLERANCE = torch.float32, 1e-3\n"
          "adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)\n"
          "model, tokenizer, meta = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)\n"
          "examples = [encode(r, tokenizer, profile.seq_len, meta['template']) for r in load_heldout()[:8]]\n"
          "pad = pad_id(tokenizer)\nreference, mask = batch_logits(model, examples, pad)\nmerged = model.merge_and_unload()\n"
          "out_dir = save_merged(merged, tokenizer, Path('..') / 'outputs' / '07_merged' / profile.name,\n"
          "                      gemma_notice=meta['base_model'].startswith('gemma'))",
}

TITLES = {"01": "VRAM 예산", "02": "양자화", "03": "LoRA 설정", "04": "KoAlpaca 형식", "05": "학습", "06": "추론",
          "07": "병합"}


def exercise_section(nn: str) -> list:
    """The 연습 문제 cells at the end of notebook ``nn``."""
    cells = [md(INTRO.format(nn=nn))]
    for level, task, exercise, _ in EXERCISES[nn]:
        cells += [md(f"### {level}\n{task}"), code(exercise)]
    return cells


def solutions_notebook(nn: str, setup_code: str) -> list:
    """A notebook with worked solutions of notebook ``nn``'s exercises; every check must say 정답."""
    cells = [md(f"# {nn}. {TITLES[nn]} — 연습 문제 풀이\n\n각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다."),
             code(setup_code)]
    if CONTEXT[nn]:
        cells.append(code(CONTEXT[nn]))
    for level, task, _, solution in EXERCISES[nn]:
        cells += [md(f"### {level}\n{task}"), code(solution)]
    return cells
