#!/usr/bin/env bash
# Procfile: run a command with its Prometheus files in $METRICS_DIR/<kind>, emptied first; without METRICS_DIR, just run it.
# Usage: scripts/with_metrics_dir.sh <kind> <command> [args...]
set -euo pipefail
kind=$1
shift
if [ -n "${METRICS_DIR:-}" ]; then
  dir="$METRICS_DIR/$kind"
  mkdir -p "$dir"
  # Files of an earlier run would be summed as if this run had counted them.
  find "$dir" -maxdepth 1 -name '*.db' -delete
  export PROMETHEUS_MULTIPROC_DIR="$dir"
fi
exec "$@"
