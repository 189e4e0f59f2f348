#!/usr/bin/env bash
# `make run`: migrate, load demo data, create the admin user and API token, then serve web + workers + beat.
set -euo pipefail
cd "$(dirname "$0")/.."

# Production-like settings with a secret kept in .env (generated once, never committed).
if [ ! -f .env ] || ! grep -q '^SECRET_KEY=' .env; then
  echo "SECRET_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" >> .env
fi
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.production}
export PORT=${PORT:-8000}
export HOST=${HOST:-127.0.0.1}

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput >/dev/null
.venv/bin/python manage.py seed_demo
credentials=$(.venv/bin/python manage.py ensure_admin | sed 's/^/  /')

base="http://${HOST}:${PORT}"
cat <<INFO

  StockPulse is starting (Ctrl-C stops web, the workers and beat).
$credentials

  Dashboard:  $base/dashboard/
  Admin:      $base/admin/
  API docs:   $base/api/docs/
  Health:     $base/healthz   $base/readyz   $base/metrics

  Try:  curl -H "Authorization: Bearer <API token>" $base/api/v1/stock/

INFO
# Every process below writes its metrics under one directory; /metrics sums them (config/settings/base.py).
export METRICS_DIR=${METRICS_DIR:-$PWD/.venv/metrics}
exec .venv/bin/honcho start -f Procfile
