# StockPulse: `make run` serves the service with demo data, `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test install install-dev check-services check-browser db migrate demo serve bench-reserve bench-ws bench-telegram bench-projection bench-search bench-import bench-demand bench-outage bench-ledger clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
install-dev: $(STAMP_DEV)

check-services: install
	@$(PY) scripts/check_services.py

db: check-services
	@$(PY) scripts/create_database.py

run: db
	@scripts/run.sh

# The dashboard's end-to-end tests drive Debian's Chromium: installed here if missing (needs root or sudo).
check-browser:
	@scripts/ensure_chromium.sh

# The realtime tests once more on the channels-redis core layer, the other CHANNEL_LAYER_BACKEND (docs/realtime.md).
REALTIME_TESTS := inventory/tests/test_consumers.py inventory/tests/test_consumers_locations.py \
	inventory/tests/test_consumers_daphne.py \
	inventory/tests/test_realtime.py core/tests/test_fanout.py orders/tests/test_realtime.py

# One pytest worker per CPU (pytest-xdist): each has its own test database, Redis prefixes and ports.
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= auto

test: install-dev check-services check-browser
	$(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)
	CHANNEL_LAYER_BACKEND=core $(VENV)/bin/pytest -n $(TEST_WORKERS) -q $(REALTIME_TESTS)

bench-telegram: install-dev db
	$(PY) bench/telegram.py

# Fan-out latency of the live stock stream: 1,000 WebSocket clients (docs/bench-ws.md).
bench-ws: install-dev db
	$(PY) bench/ws_bench.py $(BENCH_WS_ARGS)

# Projections at 100,000 products / 1,000,000 planned movements, in its own database (see docs/bench-proj.md).
bench-projection: install-dev db
	$(PY) bench/projection.py

# Demand estimates on synthetic sales: accuracy against the 7-day mean, AutoETS and Holt-Winters, a replay of the
# reorder suggestions, speed (docs/benchmarks.md). The 100,000-product figure:
#   make bench-demand BENCH_DEMAND_ARGS="--products 100000 --days 120 --new-every 50 --speed-only"
bench-demand: install-dev db
	$(PY) bench/demand.py $(BENCH_DEMAND_ARGS)

# The bot's /estoque look-up over 100,000 products, server time (docs/benchmarks.md).
bench-search: install-dev db
	$(PY) bench/search.py

# Reservations under Daphne: hot SKU, 1,000 SKUs, multi-line carts, last-units rush (docs/bench-resv.md).
bench-reserve: install-dev db
	$(PY) bench/reserve.py $(BENCH_RESERVE_ARGS)

# The ledger partitioned by month: 50M rows, then per-product reads p50/p95/p99 (docs/ledger-partitioning.md).
# Smaller: make bench-ledger BENCH_LEDGER_ARGS="--rows 2000000"
bench-ledger: install-dev db
	$(PY) bench/ledger.py $(BENCH_LEDGER_ARGS)

# ERP import of 100,000 rows, all or nothing: the command, a bad last line, the API with a worker (docs/benchmarks.md).
bench-import: install-dev db
	$(PY) bench/import.py

# PostgreSQL stopped and a Daphne process killed under load: time to 503, to recovery, to serving again (docs/benchmarks.md).
bench-outage: install-dev db
	$(PY) bench/outage.py $(BENCH_OUTAGE_ARGS)

clean:
	rm -rf $(VENV) staticfiles
