"""Tests for scripts/with_metrics_dir.sh: each Procfile process writes its metric files in METRICS_DIR/<kind>, summed on /metrics."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from core.tests.metrics import COUNT_HEALTHZ, ROOT, http_requests_in_text

SCRIPT = ROOT / "scripts" / "with_metrics_dir.sh"


def _run(kind: str, code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR")} | env
    return subprocess.run([str(SCRIPT), kind, sys.executable, "-c", code], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=30, check=True)


def test_each_kind_writes_in_its_own_directory_and_metrics_sums_them_all(client, settings, tmp_path):
    _run("web", COUNT_HEALTHZ.format(count=2), METRICS_DIR=str(tmp_path))
    _run("celery-default", COUNT_HEALTHZ.format(count=3), METRICS_DIR=str(tmp_path))
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


def _kinds(commands: dict[str, list[str]]) -> dict[str, str]:
    """The metrics kind each command runs under the script with, by process name."""
    return {name: argv[1] for name, argv in commands.items() if argv and argv[0].endswith("with_metrics_dir.sh")}


def test_the_procfile_and_compose_run_web_and_every_worker_each_in_a_directory_of_its_own():
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    compose_commands = {name: service.get("command") or [] for name, service in services.items()}

    procfile_kinds = _kinds({name: shlex.split(command) for name, command in procfile.items()})
    compose_kinds = _kinds(compose_commands)

    expected = {"web": "web", "worker": "celery-default", "alerts": "celery-alerts", "orders": "celery-orders"}
    assert procfile_kinds == compose_kinds == expected
    # Compose: the same volume at METRICS_DIR in each, so the web's /metrics reads the workers' files.
    metrics_dir = compose["x-app"]["environment"]["METRICS_DIR"]
    assert all(f"metrics:{metrics_dir}" in services[name]["volumes"] for name in expected)
