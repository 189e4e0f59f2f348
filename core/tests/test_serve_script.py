"""scripts/serve.py, the web command of `make run`: it will not share its port with a server already there."""
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_serve_refuses_a_port_that_another_server_already_listens_on():
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "serve.py"), "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"], capture_output=True, text=True, timeout=30)

    assert result.returncode == 1
    assert f"already listens on 127.0.0.1:{port}" in result.stderr
