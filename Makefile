# ctaflow: two commands on a fresh machine.
#   make demo   install into .venv if missing, run campaigns/demo.yaml, write the report
#   make test   same install, then ruff + the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ctaflow-installed
WORKDIR ?= demo-run
PYTEST_ARGS ?=
# test processes (pytest-xdist): one per core; the cluster tests share one (their daemons)
PYTEST_WORKERS ?= auto

.PHONY: install demo test lint browser bench clean

install: $(STAMP)

# Reinstall only when the dependency list changes. torch first: the local CPU wheel
# (torch==2.13.0); any other route pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ctaflow run campaigns/demo.yaml --workdir $(WORKDIR)
	$(BIN)/ctaflow build --workdir $(WORKDIR)
	$(BIN)/ctaflow report --workdir $(WORKDIR)

lint: $(STAMP)
	$(BIN)/ruff check ctaflow tests benchmarks
	$(BIN)/ruff format --check ctaflow tests benchmarks

# Debian's chromium + chromedriver for the report's browser check (tests/test_report_browser.py),
# installed when absent (needs root, as CI runs); apt's output is shown only if it fails.
APT_LOG := /tmp/ctaflow-apt-browser.log
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  echo "installing Debian chromium + chromium-driver (browser check of the report)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } \
	    >$(APT_LOG) 2>&1 || { cat $(APT_LOG); exit 1; }; }

# pytest exit code 5 means no test ran: that is a failure here, not green.
test: lint browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# Every benchmark side by side, one table; writes benchmarks/RESULTS.md and results.json.
# Row 6 reads the demo's work directory when `make demo` left one. BENCH_ARGS=--quick: < 3 min.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(if $(wildcard $(WORKDIR)/ctaflow.log),--demo-workdir $(WORKDIR)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(WORKDIR) .pytest_cache
