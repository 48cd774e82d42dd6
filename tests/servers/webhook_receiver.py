#!/usr/bin/env python3
"""Webhook receiver for the escalation tests: records every POST (headers, JSON body, whether
the HMAC-SHA256 signature is valid for the shared secret) as one JSON line, and answers a
create with a ticket id, the same one again for a repeated delivery key.

usage: webhook_receiver.py PORT SECRET RECORD_FILE
"""
import hashlib
import hmac
import http.server
import json
import sys

PORT, SECRET, RECORD = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
tickets = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        timestamp = self.headers.get("X-Vigie-Timestamp", "")
        expected = "sha256=" + hmac.new(
            SECRET, timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        signature = self.headers.get("X-Vigie-Signature", "")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        delivery = self.headers.get("X-Vigie-Delivery", "")
        answer = {}
        if self.headers.get("X-Vigie-Event") == "ticket.create":
            answer["ticket_id"] = tickets.setdefault(delivery, "WH-%d" % (len(tickets) + 1))
        record = {
            "path": self.path,
            "event": self.headers.get("X-Vigie-Event"),
            "delivery": delivery,
            "timestamp": timestamp,
            "signature_valid": hmac.compare_digest(signature, expected),
            "content_type": self.headers.get("Content-Type"),
            "body": parsed,
        }
        with open(RECORD, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
