# Two commands matter: `make run` (set up and start the app) and `make test`.
# torch is pinned and installed first: an unpinned torch resolved by pip pulls
# several GB of CUDA packages; the project's own metadata keeps torch>=2.2.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test setup setup-dev lint bench self-test app desktop-entry clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(PY) pyproject.toml
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

run: setup
	$(PY) -m sd_desktop

test: setup-dev
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: setup-dev
	$(PY) -m ruff check sd_desktop tests benchmarks packaging

self-test: setup
	$(PY) -m sd_desktop --self-test

# A one-folder app in dist/sd-desktop (PyInstaller), checked by its own --self-test.
app: setup
	VENV=$(VENV) packaging/build_app.sh

# Add the app to this user's application menu (Linux, XDG).
desktop-entry: setup
	$(PY) -m sd_desktop.install_desktop

bench: setup-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
