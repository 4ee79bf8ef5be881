# ntrader — NautilusTrader market-data toolchain. `make` (or `make help`) lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Public variables (see README "Make targets"): CATALOG ARGS FORMAT SYMBOL SYMBOLS BAR START END
# MODE CSV DSN SET DATES STRATEGY RUN RUNS DAYS JOBS LAUNCHER RAY_ADDRESS SIM_PORT PLAN DEMO_*. RUNS
# (every target) = root of the run folders, a directory or s3://bucket/prefix (env NTRADER_RUNS).
# No recipe puts a value on its command line and make expands none of them. First (before any
# $(shell …)), every variable set on the command line becomes a simple one holding its raw text:
# exported as it was, make would expand it, running a `$(shell …)` inside. Each public one then
# reaches the script byte for byte as NTRADER_MAKE_<VAR>; ntrader.runs.make_args turns them into
# quoted Hydra overrides for the recipe's NTRADER_MAKE_TARGET (symbols, config groups, numbers
# checked: exit 2) and splits ARGS with shlex. Usage checks read "$$NTRADER_MAKE_<VAR>" (a
# variable expanded inside double quotes is not re-parsed by the shell).
SIM_PORT ?= 7497
DEMO_CATALOG ?= data/demo/catalog
DEMO_START ?= 2024-05-01
DEMO_END ?= 2024-05-31
NTRADER_MAKE_VARS := CATALOG ARGS FORMAT SYMBOL SYMBOLS BAR START END MODE CSV DSN SET DATES \
  STRATEGY RUN RUNS DAYS JOBS LAUNCHER RAY_ADDRESS SIM_PORT PLAN DEMO_CATALOG DEMO_START DEMO_END
$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),\
  $(eval override $(v) := $$(value $(v)))$(eval export $(v))))
$(foreach v,$(NTRADER_MAKE_VARS),$(eval export NTRADER_MAKE_$(v) := $$(value $(v))))

UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
# Use a working `uv` from PATH, else bootstrap one with pip into .tools/ (no global install).
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo .tools/uv/bin/uv)
STAMP := $(VENV)/.synced

# Run a script; ntrader.runs.make_args builds its arguments for this target ($@) from the
# NTRADER_MAKE_* variables. GNU make exits 2 on ANY failed recipe, so name the script's own code.
run = NTRADER_MAKE_TARGET=$@ $(PY) scripts/$(1).py || { rc=$$?; echo "scripts/$(1).py exited with code $$rc (README: Exit codes)" >&2; exit $$rc; }
# Run a tool with the shlex-split ARGS appended (and, for sim, --port SIM_PORT before them).
tool = NTRADER_MAKE_TARGET=$@ $(PY) -m ntrader.runs.make_args exec --

.PHONY: help setup test test-all lint format bench screenshots import scan check compact log gc doctor report fetch sim demo backtest sweep rerun migrate clean-runs

help: ## Show this help (the default goal)
	@echo "ntrader — make TARGET [VAR=value …]   (every target also takes CATALOG=dir ARGS=\"hydra overrides\")"
	@echo
	@grep -hE '^[a-z][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

ifneq ($(UV),uv)
$(UV):
	python3 -m pip install --quiet --disable-pip-version-check --target .tools/uv uv==$(UV_VERSION)
endif

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.12
	@touch $@

setup: $(STAMP) ## Create .venv from uv.lock (bootstraps uv with pip if missing): make setup

test: $(STAMP) ## Run the test suite (slow extras excluded): make test
	$(tool) $(PY) -m pytest -m "not slow" -n 2

test-all: $(STAMP) ## Run every test including the slow ones: make test-all
	$(tool) $(PY) -m pytest -n 2

lint: $(STAMP) ## ruff (lint + format check), mypy and the import-linter layer contracts: make lint
	$(VENV)/bin/ruff check lib scripts tests bench docs
	$(VENV)/bin/ruff format --check lib scripts tests bench docs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP) ## Apply ruff fixes and formatting: make format
	$(VENV)/bin/ruff check --fix lib scripts tests bench docs
	$(VENV)/bin/ruff format lib scripts tests bench docs

bench: $(STAMP) ## Benchmarks, side by side with the reference paths; prints ratios: make bench
	$(tool) $(PY) bench/run.py

screenshots: $(STAMP) ## Regenerate the README's pictures of the report and sweep pages (needs /usr/bin/chromium): make screenshots
	$(tool) $(PY) docs/screenshots.py

import: $(STAMP) ## Import a CSV: make import CSV=bars.csv SYMBOL=NVDA.NASDAQ [BAR=1-MINUTE-LAST] [MODE=skip|overwrite|merge] | many: CSV='incoming/*.csv' SYMBOL={stem}
	@test -n "$$NTRADER_MAKE_CSV" || { echo "usage: make import CSV=path/to/bars.csv SYMBOL=NVDA [BAR=1-MINUTE-LAST] [MODE=skip|overwrite|merge]"; exit 2; }
	@test -n "$$NTRADER_MAKE_SYMBOL" || { echo "usage: make import CSV=$$NTRADER_MAKE_CSV SYMBOL=NVDA [BAR=…] [MODE=…]  (SYMBOL is missing)"; exit 2; }
	@$(call run,import_csv)

scan: $(STAMP) ## List every bar type in the catalog: make scan [FORMAT=table|json|csv]
	@$(call run,scan)

check: $(STAMP) ## One instrument: availability, calendar gaps, health: make check SYMBOL=AAPL [START=2024-01-02 END=2024-03-28] [FORMAT=…]
	@test -n "$$NTRADER_MAKE_SYMBOL" || { echo "usage: make check SYMBOL=AAPL [START=YYYY-MM-DD END=YYYY-MM-DD] [BAR=…] [FORMAT=table|json|csv]"; exit 2; }
	@$(call run,scan)

compact: $(STAMP) ## Merge each bar type's small data files into one per year (catalog.compact_period): make compact [SYMBOL=AAPL] [BAR=1-MINUTE-LAST] [CATALOG=dir]
	@$(call run,scan)

log: $(STAMP) ## One bar type's commit history (catalog versions, files added/removed, which run): make log SYMBOL=AAPL [BAR=…] [FORMAT=json]
	@test -n "$$NTRADER_MAKE_SYMBOL" || { echo "usage: make log SYMBOL=AAPL [BAR=…] [FORMAT=table|json|csv]"; exit 2; }
	@$(call run,scan)

gc: $(STAMP) ## Delete retained files that commits removed more than catalog.retain_days ago (older versions then unreadable): make gc [ARGS="catalog.retain_days=7"]
	@$(call run,scan)

doctor: $(STAMP) ## Check the setup (Python/.venv, catalog, IB Gateway/TWS, PostgreSQL, S3): ok/warn/fail with the fix for each, exit code = the worst: make doctor [CATALOG=dir] [IBKR_PORT=4001] [DSN=postgresql://…] [FORMAT=json]
	@$(call run,scan)

report: $(STAMP) ## Catalog report: coverage heatmap (instruments x sessions), data-health findings and tables as a self-contained HTML page + PNG in the run folder: make report [SYMBOL=AAPL | SET=mega_caps] [START=2024-01-02 END=2024-12-31] [BAR=1-MINUTE-LAST]
	@$(call run,scan)

fetch: $(STAMP) ## Fetch bars from IBKR (prints its plan first; PLAN=1: only the plan): make fetch SYMBOLS=AAPL,MSFT START=2024-01-02 END=2024-03-28 [BAR=1-MINUTE-LAST] [PLAN=1] | SET=mega_caps DATES=last_session
	@$(call run,fetch)

sim: $(STAMP) ## Run the bundled TWS simulator in the foreground (Ctrl-C stops it): make sim [SIM_PORT=7497] [ARGS="--fault pacing=true"]
	$(tool) $(PY) -m ntrader.ibkr.sim

demo: $(STAMP) ## No IB account needed: start the TWS simulator, fetch a month of AAPL 1-min bars, backtest them: make demo
	@set -e; mkdir -p .demo; rm -f .demo/sim.log; \
	$(PY) -m ntrader.ibkr.sim --host 127.0.0.1 --port 0 > .demo/sim.log 2>&1 & sim=$$!; \
	trap 'kill $$sim 2>/dev/null || true; wait $$sim 2>/dev/null || true' EXIT; \
	for i in $$(seq 200); do grep -q "listening on" .demo/sim.log 2>/dev/null && break; sleep 0.1; done; \
	port=$$(grep -o 'listening on [0-9.]*:[0-9]*' .demo/sim.log | head -1 | cut -d: -f2); \
	test -n "$$port" || { echo "demo: the simulator did not start:"; cat .demo/sim.log; exit 4; }; \
	echo "== TWS simulator on 127.0.0.1:$$port (demo catalog: $$NTRADER_MAKE_DEMO_CATALOG; your catalog is untouched)"; \
	echo "== 1/3 fetch AAPL 1-minute bars $$NTRADER_MAKE_DEMO_START .. $$NTRADER_MAKE_DEMO_END through ib_async"; \
	IBKR_HOST=127.0.0.1 IBKR_PORT=$$port NTRADER_MAKE_TARGET=demo-fetch $(PY) scripts/fetch.py; \
	echo "== 2/3 backtest EMACrossLongOnly on them"; \
	IBKR_HOST=127.0.0.1 IBKR_PORT=$$port NTRADER_MAKE_TARGET=demo-backtest $(PY) scripts/backtest.py; \
	echo "== 3/3 catalog report of the demo catalog"; \
	NTRADER_MAKE_TARGET=demo-report $(PY) scripts/scan.py; \
	echo "== done: the backtest's run folder holds summary.json, fills.csv, equity.png, tearsheet.html; open the report page printed above"

backtest: $(STAMP) ## Backtest from the catalog: make backtest SYMBOL=AAPL [START=2024-01-02 END=2024-03-28 | DATES=2024q1] [STRATEGY=ema_cross_long_only] [SET=mega_caps]
	@$(call run,backtest)

# Sweep launchers: LAUNCHER=joblib (default when JOBS is set; JOBS parallel jobs), ray (a local
# Ray instance with JOBS CPUs, default all; RAY_ADDRESS=host:6379 joins a cluster instead) or
# submitit (SLURM, conf/hydra/launcher/submitit.yaml). No LAUNCHER and no JOBS: one job at a time.
# (ntrader.runs.make_args builds those launcher overrides.)

sweep: $(STAMP) ## Hydra multirun over symbols x dates x params: make sweep SYMBOLS=AAPL,MSFT DATES=2024q1,2024q2 ARGS="strategy.params.fast_ema_period=5,10" [JOBS=2] [LAUNCHER=joblib|ray|submitit] [RAY_ADDRESS=host:6379] [RUNS=s3://bucket/runs]
	@case "$$NTRADER_MAKE_LAUNCHER" in ""|joblib|ray|submitit) ;; *) echo "usage: make sweep … LAUNCHER=joblib|ray|submitit (not '$$NTRADER_MAKE_LAUNCHER')"; exit 2;; esac
	@$(call run,backtest)

rerun: $(STAMP) ## Re-run a backtest from its run folder's saved config: make rerun RUN=runs/backtest/2024-05-01_10-00-00
	@test -n "$$NTRADER_MAKE_RUN" && test -f "$$NTRADER_MAKE_RUN/.hydra/config.yaml" || { echo "usage: make rerun RUN=runs/backtest/<stamp>  (a folder holding .hydra/config.yaml)"; exit 2; }
	@$(call run,backtest)

migrate: $(STAMP) ## Legacy PostgreSQL market_data -> catalog: make migrate DSN=postgresql://user:pass@host/db [SYMBOLS=AAPL,MSFT] [BAR=1-MINUTE-LAST] [MODE=skip]
	@test -n "$$NTRADER_MAKE_DSN$$DATABASE_URL" || { echo "usage: make migrate DSN=postgresql://user:pass@host:5432/db [SYMBOLS=AAPL,MSFT]  (or export DATABASE_URL)"; exit 2; }
	@$(call run,migrate)

clean-runs: $(STAMP) ## Delete run folders started more than DAYS (default 30) days ago under RUNS (default runs/): make clean-runs DAYS=7 [RUNS=s3://bucket/runs]
	@$(PY) -m ntrader.runs.clean
