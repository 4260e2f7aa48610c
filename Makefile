# Ferry developer entry points.
#   make run    start the whole stack locally (Postgres + RabbitMQ via scripts/bootstrap.sh, emulator included)
#   make test   install/start what tests need, then run every test
#   make lint   rustfmt check, clippy with warnings as errors, crate dependency boundaries
#   make demo   walk through the API against a running stack (scripts/demo.sh)
#   make chaos  kill, restart and starve real service processes; fail on any lost or duplicated file
#   make bench  release binaries against the machine's Postgres and RabbitMQ; each figure beside its reference

SHELL := /bin/bash
CARGO ?= cargo

# Tests create their own databases and queue prefixes on these servers.
export FERRY_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432
export FERRY_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/%2f

.PHONY: run test lint demo bootstrap build chaos bench

bootstrap:
	@scripts/bootstrap.sh

build:
	$(CARGO) build --workspace --bins

run: bootstrap build
	@scripts/run-stack.sh

test: bootstrap
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "make: cargo nextest run --workspace"; \
		$(CARGO) nextest run --workspace; \
	else \
		echo "make: cargo-nextest not found, using cargo test"; \
		$(CARGO) test --workspace; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@scripts/check-boundaries.sh

demo:
	@scripts/demo.sh

# Runs against a private Postgres and RabbitMQ node it starts itself, so it never restarts the shared servers
# other tests use. Sequential; under 10 minutes. `make chaos ARGS="backlog drive-stall"` runs some scenarios.
chaos: bootstrap
	@scripts/chaos/run.sh $(ARGS)

# Release binaries on the machine's Postgres and RabbitMQ (a fresh database and queue prefix per group of figures,
# removed afterwards). Under 10 minutes with the defaults; a full run writes docs/benchmarks.md and
# docs/benchmarks.svg. `make bench ARGS="B1 B3"` runs some figures, `ARGS="--help"` lists the parameters.
bench: bootstrap
	@scripts/bench/run.sh $(ARGS)
