#!/usr/bin/env bash
# The whole test suite: lint, types, layering, then pytest on SQLite and PostgreSQL.
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# PostgreSQL: start the local server if it is not running (see docs/testing.md).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
export M365PERF_TEST_POSTGRES_URL="${M365PERF_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
export M365PERF_REQUIRE_POSTGRES=1

$BIN/ruff check src tests bench
$BIN/ruff format --check src tests bench
$BIN/mypy
$BIN/lint-imports
$BIN/pytest "$@"
