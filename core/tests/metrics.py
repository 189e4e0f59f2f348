"""Test helpers for /metrics: a route's request counter as an answer or the files report it, and counts
written by another process, as serve.py's Daphne children write them."""
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def http_requests_of_route(samples: Iterable, route: str) -> float:
    """stockpulse_http_requests_total of one route, summed over methods and statuses."""
    return sum(sample.value for sample in samples
               if sample.name == "stockpulse_http_requests_total" and sample.labels.get("route") == route)


def http_requests_in_text(metrics_text: str, route: str) -> float:
    """The same, from a /metrics answer's text."""
    return http_requests_of_route((s for family in text_string_to_metric_families(metrics_text)
                                   for s in family.samples), route)


def gave_up(pipeline: str) -> float:
    """stockpulse_pipeline_gave_up_total of one pipeline in this process."""
    return REGISTRY.get_sample_value("stockpulse_pipeline_gave_up_total", {"pipeline": pipeline}) or 0


def samples_in_text(metrics_text: str, name: str) -> dict[tuple, float]:
    """The samples of one metric in a /metrics answer's text, by their sorted labels."""
    return {tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(metrics_text)
            for sample in family.samples if sample.name == name}


# Python code that counts {count} healthz requests, run in a process of its own.
COUNT_HEALTHZ = "from core.metrics import HTTP_REQUESTS; HTTP_REQUESTS.labels('GET', 'healthz', '200').inc({count})"


def healthz_counted_by_another_process(metrics_dir: Path, count: int) -> None:
    """A separate process in multiprocess mode counts this many healthz requests in metrics_dir (its own file)."""
    subprocess.run([sys.executable, "-c", COUNT_HEALTHZ.format(count=count)],
                   cwd=ROOT, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, check=True, timeout=30)
