"""Shared test helpers: the fastai golden fixtures live in tests/fixtures/ (see its README.md), and a localhost
HTTP server for the download tests (no network is reached)."""
import http.server
import threading
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models train faster on one thread, and a busy 2-core machine makes two threads 5-10x slower."""
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def no_plots():
    """No curves.png (it takes most of a tiny run's time) for a module whose tests are about weights and errors:
    `pytestmark = pytest.mark.usefixtures("no_plots")`."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr("awdlstm.train.plot_history", lambda *a, **k: None)
        yield


class Server:
    """Serves `files` {path: bytes} on 127.0.0.1 with HTTP Range support; `cut` {path: n} sends the full
    Content-Length but closes the connection after n bytes (once per entry); `log` records (path, Range)."""

    def __init__(self):
        self.files, self.cut, self.log, self.no_range, self.range_shift = {}, {}, [], False, 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.log.append((self.path, self.headers.get("Range")))
                data = owner.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, rng = 0, self.headers.get("Range")
                if rng and not owner.no_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    sent = start + owner.range_shift
                    self.send_header("Content-Range", f"bytes {sent}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                n = owner.cut.pop(self.path, None)
                self.wfile.write(body if n is None else body[:n])
                if n is not None:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()
