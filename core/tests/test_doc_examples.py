"""The curl examples of README.md and docs/: each runs as written against a server holding `make run`'s demo data.

A document's shell blocks run in order in one bash session, so a block can use what an earlier one
captured (a reservation id, say). Two things differ from a reader's terminal: the server's address
(``http://127.0.0.1:8000`` becomes the test server's) and lines that assign a placeholder the reader
fills in (``TOKEN=sp_...``, ``ERP_TOKEN=sp_...``), which are left out because the test has set the
variable already (one token with every scope, as `make run` prints). Every
request must answer below 500, and a 4xx only where its block says that status is the expected answer.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from core.tests.factories import ApiClientFactory
from core.tests.test_serve_script import serving

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_ADDRESS = "http://127.0.0.1:8000"
WEBHOOK_SECRET = "doc-examples-secret"

_SHELL_BLOCK = re.compile(r"^```(bash|sh|shell)\n(.*?)^```", re.S | re.M)
# `TOKEN=sp_...   # printed by make run`, `export TOKEN=...`: the reader pastes a value of their own.
_PLACEHOLDER_ASSIGNMENT = re.compile(r"^\s*(export\s+)?[A-Z_]+=\S*(\.\.\.|…)\S*\s*(#.*)?$")

# Each request's status and the block it ran in, to a log the test reads afterwards; the body goes on
# to stdout as curl's would, so examples that pipe it keep working.
_CURL_WRAPPER = r'''
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || status=${status:-000}
  printf '%s %s %s\n' "$EXAMPLE_BLOCK" "$status" "$(printf 'curl %s' "$*" | tr '\n' ' ')" >> "$EXAMPLE_LOG"
  cat "$body"; rm -f "$body"
}
'''


_ASSIGNMENT = re.compile(r"^\s*(export\s+)?[A-Z_]+=")


def _only_assignments(block: str) -> bool:
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and all(_ASSIGNMENT.match(line) for line in lines)


def shell_blocks(document: Path) -> list[str]:
    """The shell blocks of a document that send a request, and those that only set variables for them, in order."""
    return [body for _, body in _SHELL_BLOCK.findall(document.read_text())
            if "curl " in body or _only_assignments(body)]


def runnable(block: str, address: str) -> str:
    lines = [line for line in block.splitlines() if not _PLACEHOLDER_ASSIGNMENT.match(line)]
    return "\n".join(lines).replace(DOCUMENTED_ADDRESS, address)


def documented_statuses(block: str) -> set[str]:
    """Statuses the block's comments give as answers (`# -> 409 ...`, `# HTTP/1.1 403 Forbidden`, `# 201 {...}`)."""
    comments = " ".join(line.split("#", 1)[1] for line in block.splitlines() if "#" in line)
    return set(re.findall(r"\b([1-5]\d\d)\b", comments))


def test_shell_blocks_are_found_and_placeholders_left_out():
    assert sum(len(shell_blocks(document)) for document in DOCUMENTS) >= 10
    assert _only_assignments('TOKEN=...   # a token\nH="Authorization: Bearer $TOKEN"')
    assert not _only_assignments("TOKEN=x\nmake run")
    block = "TOKEN=sp_...   # printed by make run\ncurl http://127.0.0.1:8000/api/v1/stock/\n# -> 409 when out"

    assert runnable(block, "http://127.0.0.1:9") == "curl http://127.0.0.1:9/api/v1/stock/\n# -> 409 when out"
    assert documented_statuses(block) == {"409"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_curl_example_runs_against_the_demo_data(tmp_path):
    call_command("seed_demo", verbosity=0)
    token = ApiClientFactory(scopes=["read", "reserve", "manage"]).raw_token
    database = connection.settings_dict
    database_url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    failures = []

    with serving(tmp_path, workers=1, DATABASE_URL=database_url, TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET) as served:
        for document in DOCUMENTS:
            blocks = shell_blocks(document)
            if not blocks:
                continue
            log = tmp_path / f"{document.stem}.log"
            script = _CURL_WRAPPER + "\n".join(
                f"EXAMPLE_BLOCK={index}\n{runnable(block, served.url)}" for index, block in enumerate(blocks))
            result = subprocess.run(
                ["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                env={**os.environ, "TOKEN": token, "ERP_TOKEN": token, "BASE": served.url, "EXAMPLE_LOG": str(log),
                     "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET},
            )
            calls = [line.split(" ", 2) for line in log.read_text().splitlines()] if log.exists() else []
            name = document.relative_to(ROOT)
            if result.returncode != 0:
                failures.append(f"{name}: the examples exited {result.returncode}: {result.stderr[-500:]}")
            if len(calls) < sum(block.count("curl ") for block in blocks):
                failures.append(f"{name}: {len(calls)} requests ran, fewer than the examples hold")
            for index, status, command in calls:
                expected = documented_statuses(blocks[int(index)])
                if status.startswith(("0", "5")) or (status.startswith("4") and status not in expected):
                    failures.append(f"{name} block {index}: {status} for `{command[:160]}`")

    assert not failures, "\n".join(failures)
