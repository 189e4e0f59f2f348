"""An ASGI application for serve.py tests: loaded only while the gate file exists, with a mark left by each loader."""
import os
import time
from pathlib import Path

_gate = Path(os.environ["TEST_APP_GATE"])
while not _gate.exists():
    time.sleep(0.05)

from config.asgi import application  # noqa: E402,F401

(Path(os.environ["TEST_APP_LOADED_DIR"]) / str(os.getpid())).touch()
