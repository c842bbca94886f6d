# The two commands of the README's quick start. Both install what is missing first.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: demo test deps build bench

## Run Sesame on its embedded default (SQLite, generated keys) with the demo tenant.
demo: deps
	cargo run --release -- serve --demo

## Run every test. Storage tests also run on PostgreSQL when SESAME_TEST_DATABASE_URL is set.
test: deps
	cargo test --all-targets

deps:
	@scripts/install-deps

build: deps
	cargo build --release

## Load tests on one core each for server and load (docs/performance.md). Takes a few minutes.
bench:
	@scripts/install-deps bench
	bench/http.sh
