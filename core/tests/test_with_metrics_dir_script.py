"""Tests for scripts/with_metrics_dir.sh: each Procfile process writes its metric files in METRICS_DIR/<kind>, summed on /metrics."""
import os
import subprocess
import sys
from pathlib import Path

from core.tests.metrics import ROOT, http_requests_in_text

SCRIPT = ROOT / "scripts" / "with_metrics_dir.sh"
COUNT_HEALTHZ = "from core.metrics import HTTP_REQUESTS; HTTP_REQUESTS.labels('GET', 'healthz', '200').inc({})"


def _run(kind: str, code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR")} | env
    return subprocess.run([str(SCRIPT), kind, sys.executable, "-c", code], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=30, check=True)


def test_each_kind_writes_in_its_own_directory_and_metrics_sums_them_all(client, settings, tmp_path):
    _run("web", COUNT_HEALTHZ.format(2), METRICS_DIR=str(tmp_path))
    _run("celery-default", COUNT_HEALTHZ.format(3), METRICS_DIR=str(tmp_path))
    settings.METRICS_DIR = str(tmp_path)

    text = client.get("/metrics").content.decode()

    assert {p.parent.name for p in tmp_path.glob("*/*.db")} == {"web", "celery-default"}
    assert http_requests_in_text(text, "healthz") == 5


def test_files_of_an_earlier_run_are_removed_before_the_command_starts(tmp_path):
    stale = tmp_path / "web" / "counter_999999.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier run")

    shown = _run("web", "import os; print(os.environ['PROMETHEUS_MULTIPROC_DIR'])", METRICS_DIR=str(tmp_path))

    assert Path(shown.stdout.strip()) == tmp_path / "web"
    assert not stale.exists()


def test_without_metrics_dir_the_command_runs_as_it_is():
    shown = _run("web", "import os; print(os.environ.get('PROMETHEUS_MULTIPROC_DIR', 'unset'))")

    assert shown.stdout.strip() == "unset"
