"""HTTPS test peer for tests/e2e/lan.rs: answers every GET with 200 over TLS with the given
(self-signed) certificate, like a clinic NAS's admin page. Loopback only.

usage: python3 https_server.py PORT CERT KEY
"""
import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"vigie test NAS\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
