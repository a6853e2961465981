"""A file server on 127.0.0.1 for download tests: serves one folder, answers Range requests with 206,
records what was asked, and shuts itself down after `lifetime` seconds even if a test forgets to."""
import contextlib
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RangeFileHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = os.path.join(self.server.folder, self.path.lstrip("/"))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as file:
            data = file.read()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match else 0
        if start >= len(data) and match:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(folder, lifetime=60):
    """Yield (base URL, list of (path, Range header) requests) while serving `folder`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RangeFileHandler)
    server.daemon_threads = True
    server.folder, server.requests = str(folder), []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    deadline = threading.Timer(lifetime, server.shutdown)
    deadline.daemon = True
    thread.start()
    deadline.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requests
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
