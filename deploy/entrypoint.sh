#!/bin/sh
# The container's start: migrate the database once, then become `m365perf serve`.
#
# Settings come from the environment (M365PERF_*; see config/.env.example). The listener
# and the flows folder can be changed with SERVE_HOST, SERVE_PORT and SERVE_FLOWS; any
# arguments are passed on to `m365perf serve`.
set -eu

m365perf db upgrade
exec m365perf serve \
    --host "${SERVE_HOST:-0.0.0.0}" \
    --port "${SERVE_PORT:-8080}" \
    --flows "${SERVE_FLOWS:-/srv/m365perf/flows}" \
    --no-migrate \
    "$@"
