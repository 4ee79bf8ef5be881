# ntrader — NautilusTrader market-data toolchain. `make` (or `make help`) lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
# Use a working `uv` from PATH, else bootstrap one with pip into .tools/ (no global install).
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo .tools/uv/bin/uv)
STAMP := $(VENV)/.synced

# Public variables (see README "Make targets"): CATALOG ARGS FORMAT SYMBOL SYMBOLS BAR START END
# MODE CSV. Each becomes a Hydra override only when set. RUNS (every target) = root of the run
# folders, a directory or s3://bucket/prefix (env NTRADER_RUNS for the script).
quote = '$(1)="$(2)"'
opt = $(if $(2),$(call quote,$(1),$(2)))
COMMON = $(call opt,catalog.path,$(CATALOG)) $(call opt,bars.spec,$(BAR)) $(ARGS)
# Run a script; GNU make exits 2 on ANY failed recipe, so name the script's own exit code.
run = $(if $(RUNS),NTRADER_RUNS='$(RUNS)' )$(PY) scripts/$(1).py $(2) || { rc=$$?; echo "scripts/$(1).py exited with code $$rc (README: Exit codes)" >&2; exit $$rc; }

.PHONY: help setup test test-all lint format bench import scan check fetch sim demo backtest sweep rerun migrate clean-runs

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
	$(PY) -m pytest -m "not slow" -n 2 $(ARGS)

test-all: $(STAMP) ## Run every test including the slow ones: make test-all
	$(PY) -m pytest -n 2 $(ARGS)

lint: $(STAMP) ## ruff (lint + format check), mypy and the import-linter layer contracts: make lint
	$(VENV)/bin/ruff check lib scripts tests bench docs
	$(VENV)/bin/ruff format --check lib scripts tests bench docs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP) ## Apply ruff fixes and formatting: make format
	$(VENV)/bin/ruff check --fix lib scripts tests bench docs
	$(VENV)/bin/ruff format lib scripts tests bench docs

bench: $(STAMP) ## Benchmarks, side by side with the reference paths; prints ratios: make bench
	$(PY) bench/run.py $(ARGS)

import: $(STAMP) ## Import a CSV: make import CSV=bars.csv SYMBOL=NVDA.NASDAQ [BAR=1-MINUTE-LAST] [MODE=skip|overwrite|merge]
	@test -n "$(CSV)" || { echo "usage: make import CSV=path/to/bars.csv SYMBOL=NVDA [BAR=1-MINUTE-LAST] [MODE=skip|overwrite|merge]"; exit 2; }
	@test -n "$(SYMBOL)" || { echo "usage: make import CSV=$(CSV) SYMBOL=NVDA [BAR=…] [MODE=…]  (SYMBOL is missing)"; exit 2; }
	@$(call run,import_csv,$(call quote,csv.path,$(CSV)) $(call quote,symbol,$(SYMBOL)) $(call opt,mode,$(MODE)) $(COMMON))

scan: $(STAMP) ## List every bar type in the catalog: make scan [FORMAT=table|json|csv]
	@$(call run,scan,$(call opt,format,$(FORMAT)) $(COMMON))

check: $(STAMP) ## One instrument: availability, calendar gaps, health: make check SYMBOL=AAPL [START=2024-01-02 END=2024-03-28] [FORMAT=…]
	@test -n "$(SYMBOL)" || { echo "usage: make check SYMBOL=AAPL [START=YYYY-MM-DD END=YYYY-MM-DD] [BAR=…] [FORMAT=table|json|csv]"; exit 2; }
	@$(call run,scan,$(call quote,symbol,$(SYMBOL)) $(call opt,start,$(START)) $(call opt,end,$(END)) $(call opt,format,$(FORMAT)) $(COMMON))

fetch: $(STAMP) ## Fetch bars from IBKR: make fetch SYMBOLS=AAPL,MSFT START=2024-01-02 END=2024-03-28 [BAR=1-MINUTE-LAST] | SET=mega_caps DATES=last_session
	@$(call run,fetch,$(if $(or $(SYMBOLS),$(SYMBOL)),'symbols=[$(or $(SYMBOLS),$(SYMBOL))]') $(call opt,dates.start,$(START)) $(call opt,dates.end,$(END)) $(if $(DATES),dates=$(DATES)) $(if $(SET),instruments=$(SET)) $(COMMON))

SIM_PORT ?= 7497
sim: $(STAMP) ## Run the bundled TWS simulator in the foreground (Ctrl-C stops it): make sim [SIM_PORT=7497] [ARGS="--fault pacing=true"]
	$(PY) -m ntrader.ibkr.sim --port $(SIM_PORT) $(ARGS)

DEMO_CATALOG ?= data/demo/catalog
DEMO_START ?= 2024-05-01
DEMO_END ?= 2024-05-31
demo: $(STAMP) ## No IB account needed: start the TWS simulator, fetch a month of AAPL 1-min bars, backtest them: make demo
	@set -e; mkdir -p .demo; rm -f .demo/sim.log; \
	$(PY) -m ntrader.ibkr.sim --host 127.0.0.1 --port 0 > .demo/sim.log 2>&1 & sim=$$!; \
	trap 'kill $$sim 2>/dev/null || true; wait $$sim 2>/dev/null || true' EXIT; \
	for i in $$(seq 200); do grep -q "listening on" .demo/sim.log 2>/dev/null && break; sleep 0.1; done; \
	port=$$(grep -o 'listening on [0-9.]*:[0-9]*' .demo/sim.log | head -1 | cut -d: -f2); \
	test -n "$$port" || { echo "demo: the simulator did not start:"; cat .demo/sim.log; exit 4; }; \
	echo "== TWS simulator on 127.0.0.1:$$port (demo catalog: $(DEMO_CATALOG); your catalog is untouched)"; \
	echo "== 1/2 fetch AAPL 1-minute bars $(DEMO_START) .. $(DEMO_END) through ib_async"; \
	IBKR_HOST=127.0.0.1 IBKR_PORT=$$port $(PY) scripts/fetch.py 'symbols=[AAPL]' dates.start=$(DEMO_START) dates.end=$(DEMO_END) catalog.path=$(DEMO_CATALOG) tag=demo; \
	echo "== 2/2 backtest EMACrossLongOnly on them"; \
	IBKR_HOST=127.0.0.1 IBKR_PORT=$$port $(PY) scripts/backtest.py symbol=AAPL dates.start=$(DEMO_START) dates.end=$(DEMO_END) catalog.path=$(DEMO_CATALOG) tag=demo; \
	echo "== done: the run folder above holds summary.json, fills.csv, equity.png, tearsheet.html"

BT_ARGS = $(call opt,dates.start,$(START)) $(call opt,dates.end,$(END)) $(if $(DATES),dates=$(DATES)) $(if $(STRATEGY),strategy=$(STRATEGY)) $(if $(SET),instruments=$(SET))

backtest: $(STAMP) ## Backtest from the catalog: make backtest SYMBOL=AAPL [START=2024-01-02 END=2024-03-28 | DATES=2024q1] [STRATEGY=ema_cross_long_only] [SET=mega_caps]
	@$(call run,backtest,$(call opt,symbol,$(SYMBOL)) $(BT_ARGS) $(COMMON))

# Sweep launchers: LAUNCHER=joblib (default when JOBS is set; JOBS parallel jobs), ray (a local
# Ray instance with JOBS CPUs, default all; RAY_ADDRESS=host:6379 joins a cluster instead) or
# submitit (SLURM, conf/hydra/launcher/submitit.yaml). No LAUNCHER and no JOBS: one job at a time.
LAUNCHER_ARGS_joblib = hydra/launcher=joblib $(if $(JOBS),hydra.launcher.n_jobs=$(JOBS))
LAUNCHER_ARGS_ray = hydra/launcher=ntrader_ray $(if $(RAY_ADDRESS),$(call opt,hydra.launcher.ray.init.address,$(RAY_ADDRESS)),$(if $(JOBS),hydra.launcher.ray.init.num_cpus=$(JOBS)))
LAUNCHER_ARGS_submitit = hydra/launcher=submitit
SWEEP_LAUNCHER = $(or $(LAUNCHER),$(if $(JOBS),joblib))

sweep: $(STAMP) ## Hydra multirun over symbols x dates x params: make sweep SYMBOLS=AAPL,MSFT DATES=2024q1,2024q2 ARGS="strategy.params.fast_ema_period=5,10" [JOBS=2] [LAUNCHER=joblib|ray|submitit] [RAY_ADDRESS=host:6379] [RUNS=s3://bucket/runs]
	@case "$(SWEEP_LAUNCHER)" in ""|joblib|ray|submitit) ;; *) echo "usage: make sweep … LAUNCHER=joblib|ray|submitit (not '$(LAUNCHER)')"; exit 2;; esac
	@$(call run,backtest,-m $(if $(or $(SYMBOLS),$(SYMBOL)),symbol=$(or $(SYMBOLS),$(SYMBOL))) $(BT_ARGS) $(if $(SWEEP_LAUNCHER),$(LAUNCHER_ARGS_$(SWEEP_LAUNCHER))) $(COMMON))

rerun: $(STAMP) ## Re-run a backtest from its run folder's saved config: make rerun RUN=runs/backtest/2024-05-01_10-00-00
	@test -n "$(RUN)" && test -f "$(RUN)/.hydra/config.yaml" || { echo "usage: make rerun RUN=runs/backtest/<stamp>  (a folder holding .hydra/config.yaml)"; exit 2; }
	@$(call run,backtest,--config-dir "$(abspath $(RUN))/.hydra" --config-name config +hydra=default tag=rerun $(ARGS))

migrate: $(STAMP) ## Legacy PostgreSQL market_data -> catalog: make migrate DSN=postgresql://user:pass@host/db [SYMBOLS=AAPL,MSFT] [BAR=1-MINUTE-LAST] [MODE=skip]
	@test -n "$(DSN)$$DATABASE_URL" || { echo "usage: make migrate DSN=postgresql://user:pass@host:5432/db [SYMBOLS=AAPL,MSFT]  (or export DATABASE_URL)"; exit 2; }
	@DATABASE_URL="$(or $(DSN),$$DATABASE_URL)" $(call run,migrate,$(if $(or $(SYMBOLS),$(SYMBOL)),'symbols=[$(or $(SYMBOLS),$(SYMBOL))]') $(call opt,mode,$(MODE)) $(COMMON))

clean-runs: ## Delete run folders older than DAYS (default 30): make clean-runs DAYS=7
	@find runs -mindepth 2 -maxdepth 2 -type d -mtime +$(or $(DAYS),30) -print -exec rm -rf {} + 2>/dev/null || true
