# dataknobs-data: build, lint, test and benchmark.
#
#   make test      fresh clone -> .venv, dev build, lint, cargo test, pytest with coverage, the
#                  docs site, the wheel in a fresh venv (what CI runs)
#   make docs      mkdocs build --strict into target/site
#   make bench     release build + pytest-benchmark over benches/ (BENCH_ARGS='-m "not slow"')
#   make compare   release build + benches/compare.py against dataknobs-data 0.11.0 from PyPI
#   make sdist-check  the sdist built into a wheel offline (a release build; not in CI)
#
# Needs python3.11 and cargo on PATH (and Java 17 + Maven for the OpenSearch test node, which
# `make services` installs with apt when missing). Every recipe line fails the target on error.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-installed
EXTRAS := test dev

# The PyO3 build script, cargo clippy/test and maturin all see the same interpreter, so
# switching between them does not rebuild pyo3 for a changed interpreter.
export PYO3_PYTHON := $(PY)
# cargo test links the PyO3 crate's test harness against libpython.
PY_LIBDIR = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
MATURIN = VIRTUAL_ENV=$(VENV) $(VENV)/bin/maturin

BENCH_ARGS ?=
COMPARE_ARGS ?=
PYTEST_ARGS ?=
# Line coverage of python/ from the pytest run, against the release gates (scripts/coverage_gate.py).
COVERAGE_JSON := target/coverage.json
COVERAGE_ARGS ?= --total 90 --module 85

.PHONY: venv dev release lint fmt services test test-rust test-python docs wheel-test sdist-check bench bench-quick compare demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/requirements.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip maturin
	$(PY) scripts/requirements.py $(EXTRAS) > $(VENV)/requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r $(VENV)/requirements-dev.txt
	@touch $@

# Dev profile: quick to build, used by the tests.
dev: venv
	$(MATURIN) develop --quiet

# Release profile (fat LTO, one codegen unit): for benchmarks.
release: venv
	$(MATURIN) develop --quiet --release

lint: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches scripts
	$(VENV)/bin/ruff format --check python tests benches scripts
	$(VENV)/bin/mypy --strict python/

fmt: venv
	cargo fmt --all
	$(VENV)/bin/ruff format python tests benches scripts
	$(VENV)/bin/ruff check --fix python tests benches scripts

# The store tests against a live PostgreSQL get the tests' throwaway cluster (or the server in
# DKDATA_PG_DSN); without one they fail rather than pass unrun.
# With rustup's llvm-tools-preview the workspace's crates are built with -C instrument-coverage
# (scripts/rustc_coverage.sh; the dependencies are the dev build's, reused) and rust/core's
# line coverage is printed per file after the tests (scripts/rust_coverage.py): a report, not
# a gate. Without the tools the tests run uninstrumented and the run says why.
RUST_COV := target/llvm-cov
RUST_COV_TEST := cargo test --workspace --features dataknobs-core/coverage,dataknobs-python/coverage
test-rust: venv services
	@export LD_LIBRARY_PATH="$(PY_LIBDIR)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"; \
	if tools=$$($(PY) scripts/rust_coverage.py tools); then \
		rm -rf $(RUST_COV)/profraw; \
		export RUSTC_WRAPPER="$(CURDIR)/scripts/rustc_coverage.sh"; \
		LLVM_PROFILE_FILE="$(CURDIR)/$(RUST_COV)/profraw/%p-%m.profraw" \
			$(PY) scripts/with_services.py $(RUST_COV_TEST); \
		echo "rust coverage (lines) of rust/core:"; \
		$(PY) scripts/rust_coverage.py report $(RUST_COV) $(RUST_COV_TEST) \
			|| echo "make: the rust coverage report failed (the tests passed)" >&2; \
	else \
		echo "make: rust coverage not measured: $$tools" >&2; \
		$(PY) scripts/with_services.py cargo test --workspace; \
	fi

# The servers the tests start (tests/services/): PostgreSQL from Debian's package, unless
# DKDATA_PG_DSN points at one that runs. A fresh CI machine lacks it; apt's lists are
# refreshed only when the plain install fails, since that costs most of a minute. The package's
# own post-install (creating and starting a default cluster) may fail without an init system:
# only the binaries matter here. Without them postgres tests skip, or fail under CI=true.
# PgBouncer (Debian's pgbouncer, for the postgres-pgbouncer backend) likewise, unless
# DKDATA_PGBOUNCER_DSN points at one; the tests start their own, so the package's service matters
# no more than postgresql's.
# OpenSearch (for the search backend): a node the tests start from Maven Central jars
# (tests/services/opensearch/), built here once into target/ with Java 17 and Maven (Debian's
# openjdk-17-jdk-headless and maven), unless DKDATA_ES_URL points at one.
services:
	@if [ -n "$${DKDATA_PG_DSN:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make: installing postgresql for the test service"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends postgresql openssl >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1; apt-get install -y -q --no-install-recommends postgresql openssl >/dev/null 2>&1; } \
		|| true; \
		ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		|| echo "make: postgresql did not install; postgres tests skip (fail under CI)" >&2; \
	else echo "make: PostgreSQL is not installed and cannot be installed here; postgres tests skip (fail under CI)" >&2; fi
	@if [ -n "$${DKDATA_PGBOUNCER_DSN:-}" ] || [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make: installing pgbouncer for the test service"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends pgbouncer >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1; apt-get install -y -q --no-install-recommends pgbouncer >/dev/null 2>&1; } \
		|| true; \
		[ -x /usr/sbin/pgbouncer ] \
		|| echo "make: pgbouncer did not install; pgbouncer tests skip (fail under CI)" >&2; \
	else echo "make: PgBouncer is not installed and cannot be installed here; pgbouncer tests skip (fail under CI)" >&2; fi
	@if [ -n "$${DKDATA_ES_URL:-}" ] || { command -v java >/dev/null && command -v mvn >/dev/null; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make: installing a JDK 17 and Maven for the OpenSearch test node"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends openjdk-17-jdk-headless maven >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1; apt-get install -y -q --no-install-recommends openjdk-17-jdk-headless maven >/dev/null 2>&1; } \
		|| true; \
	else echo "make: Java 17 and Maven are not installed and cannot be installed here; search tests skip (fail under CI)" >&2; fi
	@if [ -z "$${DKDATA_ES_URL:-}" ]; then \
		$(PY) -c 'from tests.services import opensearch; opensearch.build()' \
		|| echo "make: the OpenSearch test node did not build; search tests skip (fail under CI)" >&2; fi

# pytest exits 5 when it collected no test: that is a failure too (any non-zero exit is).
test-python: dev services
	@mkdir -p target
	@rc=0; $(PY) -m pytest -q --cov=dataknobs_data --cov-report=json:$(COVERAGE_JSON) \
		$(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest ran no test - failing" >&2; fi; \
	if [ $$rc -eq 0 ]; then $(PY) scripts/coverage_gate.py $(COVERAGE_JSON) $(COVERAGE_ARGS) || rc=$$?; fi; \
	exit $$rc

# The docs site; a broken link, a missing page or an API reference that fails to render fails it.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir target/site

# The wheel (maturin build, dev profile: the release command is `maturin build --release`)
# installed into a fresh python3.11 venv, running README's quickstart there.
wheel-test: venv
	VIRTUAL_ENV=$(VENV) $(PY) scripts/wheel_smoke.py --python $(PYTHON)

# The sdist (`maturin sdist`) built into a wheel as a packager without network would: pip with
# no index and no build isolation (maturin from .venv), cargo offline and --locked, in a network
# namespace of its own where `unshare -n` works. Needs the crates in cargo's cache (any earlier
# build here). A release build, from scratch unless SDIST_CARGO_TARGET points at a target
# folder holding one, so not in CI (docs/packaging.md has the time).
SDIST_DIR := target/sdist-check
SDIST_CARGO_TARGET ?= $(CURDIR)/$(SDIST_DIR)/cargo
NO_NET := $(shell unshare -n true 2>/dev/null && echo "unshare -n")
sdist-check: venv
	rm -rf $(SDIST_DIR)/dist $(SDIST_DIR)/wheels
	$(MATURIN) sdist --out $(SDIST_DIR)/dist
	$(NO_NET) env PATH="$(VENV)/bin:$$PATH" CARGO_NET_OFFLINE=true \
		CARGO_TARGET_DIR=$(SDIST_CARGO_TARGET) MATURIN_PEP517_ARGS=--locked \
		$(PY) -m pip wheel --no-index --no-build-isolation --no-deps --wheel-dir $(SDIST_DIR)/wheels $(SDIST_DIR)/dist/*.tar.gz
	$(PY) -m zipfile -l $(SDIST_DIR)/wheels/*.whl | grep -q 'dataknobs_data/_native'
	@echo "make: $$(ls $(SDIST_DIR)/wheels/*.whl) built offline from $$(ls $(SDIST_DIR)/dist/*.tar.gz)"

test: venv dev lint test-rust test-python docs wheel-test

bench: release
	$(PY) -m pytest benches/ -p no:cacheprovider --benchmark-only $(BENCH_ARGS)

bench-quick: release
	$(PY) -m pytest benches/ -p no:cacheprovider --benchmark-only -m "not slow" $(BENCH_ARGS)

compare: release
	$(PY) benches/compare.py $(COMPARE_ARGS)

# Writes target/demo/dataknobs-demo.db (+ .jsonl, .parquet), out of the source tree.
demo: dev
	mkdir -p target/demo
	$(VENV)/bin/dataknobs-data demo --path target/demo/dataknobs-demo.db

clean:
	rm -rf $(VENV) target python/dataknobs_data/_native*.so benches/.venv-anchor benches/.venv-anchor-0.4.13
