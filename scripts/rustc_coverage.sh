#!/bin/sh
# RUSTC_WRAPPER of `make test-rust`: compiles this workspace's crates (cargo marks them with
# CARGO_PRIMARY_PACKAGE) with -C instrument-coverage and every dependency as in the plain dev
# build, so the dependencies already built in target/debug are reused, not rebuilt
# instrumented. (RUSTFLAGS would apply to every crate and make cargo rebuild them all.)
# Cargo does not see the flag, so the test build also turns on the crates' `coverage`
# feature: their instrumented artifacts then get file names of their own.
if [ -n "${CARGO_PRIMARY_PACKAGE:-}" ]; then
    exec "$@" -C instrument-coverage
fi
exec "$@"
