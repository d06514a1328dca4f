"""./course probes PyTorch's CPU index once, quickly, instead of letting pip retry it for a minute."""
from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tools" / "setup_probe.py"
sys.path.insert(0, str(PROBE.parent))  # the set-up script's helper lives outside the package

from setup_probe import reachable  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_a_server_that_answers_is_reachable_even_with_an_error_status():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404 if "missing" in self.path else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert reachable(f"{base}/whl/cpu/torch/")
        assert reachable(f"{base}/missing/")  # pip gets a fast answer from it too
        assert subprocess.run([sys.executable, str(PROBE), f"{base}/torch/"]).returncode == 0
    finally:
        server.shutdown()


def test_an_unreachable_index_is_reported_within_the_timeout():
    start = time.perf_counter()
    assert not reachable(f"http://127.0.0.1:{_closed_port()}/whl/cpu/torch/", timeout=3)
    assert not reachable("not a url")
    assert subprocess.run([sys.executable, str(PROBE), f"http://127.0.0.1:{_closed_port()}/", "3"]).returncode == 1
    assert time.perf_counter() - start < 10


def test_course_uses_the_probe_and_falls_back_to_pypi_with_one_line():
    script = (ROOT / "course").read_text()
    assert 'tools/setup_probe.py "${cpu_index%/}/torch/" 3' in script
    assert "is unreachable: installing torch from PyPI instead" in script
    assert subprocess.run(["bash", "-n", str(ROOT / "course")]).returncode == 0
