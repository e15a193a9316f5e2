import http.server
import json
import threading

import pytest


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"price": 250, "count": 5}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve(toxiproxy):
    """``serve(name)``: a small HTTP service on a thread, behind the proxy ``name``."""
    servers = []

    def serve(name):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        port = server.server_address[1]
        return "http://" + toxiproxy.proxy(name, upstream=f"127.0.0.1:{port}").listen

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
