#!/usr/bin/env python3
"""A small GLPI REST API (apirest.php) for the escalation tests, following GLPI's API
documentation for the endpoints Vigie uses:

  GET  /apirest.php/initSession        App-Token + "Authorization: user_token T" -> session_token
  GET  /apirest.php/killSession        ends the session
  POST /apirest.php/Ticket             {"input": {...}} -> 201 {"id": N, "message": ""}
  GET  /apirest.php/Ticket/N/ITILFollowup   the ticket's follow-ups
  POST /apirest.php/Ticket/N/ITILFollowup   {"input": {"itemtype", "items_id", "content"}}
  PUT  /apirest.php/Ticket/N           {"input": {"status": 5}}
  GET  /apirest.php/search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains
                                       &criteria[0][value]=V&forcedisplay[0]=2

Wrong App-Token: 400 ERROR_WRONG_APP_TOKEN_PARAMETER; wrong user token: 401
ERROR_GLPI_LOGIN_USER_TOKEN; unknown, killed or expired session: 401
ERROR_SESSION_TOKEN_INVALID. Errors are GLPI's two-element arrays. After each change the
whole state (tickets, follow-ups, sessions, counters) is written to STATE_FILE for the test.

usage: glpi_mock.py PORT APP_TOKEN USER_TOKEN STATE_FILE [--session-ttl S]
                   [--session-requests N] [--create-delay S]
  --session-ttl: a session expires S seconds after initSession.
  --session-requests: a session expires after N API calls (a deterministic expiry).
  --create-delay: store the ticket, then wait S seconds before answering (a lost answer).
"""
import argparse
import http.server
import json
import os
import re
import secrets
import threading
import time
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("app_token")
parser.add_argument("user_token")
parser.add_argument("state_file")
parser.add_argument("--session-ttl", type=float, default=3600.0)
parser.add_argument("--session-requests", type=int, default=0)
parser.add_argument("--create-delay", type=float, default=0.0)
args = parser.parse_args()

lock = threading.RLock()
state = {
    "tickets": {},
    "sessions_opened": 0,
    "sessions_killed": 0,
    "rejected": [],
    "searches": 0,
}
sessions = {}  # token -> [expiry (monotonic), API calls left or None]


def save():
    tmp = args.state_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, args.state_file)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        with lock:
            state["rejected"].append(code)
            save()
        self.answer(status, [code, message])

    def body(self):
        try:
            return json.loads(self.raw) if self.raw else {}
        except ValueError:
            return None

    def route(self, method):
        # Read the body first, whatever the answer: the connection is kept alive.
        length = int(self.headers.get("Content-Length", "0"))
        self.raw = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith("/apirest.php/"):
            return self.error(400, "ERROR_BAD_ARRAY", "not the API")
        path = url.path[len("/apirest.php/"):].rstrip("/")
        if self.headers.get("App-Token") != args.app_token:
            return self.error(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "wrong App-Token")
        if path == "initSession" and method == "GET":
            if self.headers.get("Authorization") != "user_token " + args.user_token:
                return self.error(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "wrong user token")
            token = secrets.token_hex(16)
            with lock:
                sessions[token] = [
                    time.monotonic() + args.session_ttl,
                    args.session_requests or None,
                ]
                state["sessions_opened"] += 1
                save()
            return self.answer(200, {"session_token": token})
        token = self.headers.get("Session-Token", "")
        with lock:
            session = sessions.get(token)
            valid = session is not None and session[0] > time.monotonic() \
                and (session[1] is None or session[1] > 0 or path == "killSession")
            if valid and session[1] is not None and path != "killSession":
                session[1] -= 1
        if not valid:
            return self.error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
        if path == "killSession" and method == "GET":
            with lock:
                sessions.pop(token, None)
                state["sessions_killed"] += 1
                save()
            return self.answer(200, True)
        if path == "Ticket" and method == "POST":
            body = self.body()
            item = body.get("input") if isinstance(body, dict) else None
            if not isinstance(item, dict) or not item.get("name"):
                return self.error(400, "ERROR_BAD_ARRAY", "input with a name is required")
            with lock:
                new_id = len(state["tickets"]) + 1
                item = dict(item)
                item.update({"id": new_id, "status": 1, "followups": []})
                state["tickets"][str(new_id)] = item
                save()
            if args.create_delay:
                time.sleep(args.create_delay)
            return self.answer(201, {"id": new_id, "message": ""})
        match = re.fullmatch(r"Ticket/(\d+)/ITILFollowup", path)
        if match and method == "GET":
            with lock:
                ticket = state["tickets"].get(match.group(1))
                if ticket is None:
                    return self.error(404, "ERROR_ITEM_NOT_FOUND", "no such ticket")
                rows = [
                    {"id": i + 1, "itemtype": "Ticket", "items_id": ticket["id"], "content": c}
                    for i, c in enumerate(ticket["followups"])
                ]
            return self.answer(200, rows)
        if match and method == "POST":
            body = self.body()
            item = body.get("input") if isinstance(body, dict) else None
            with lock:
                ticket = state["tickets"].get(match.group(1))
                if ticket is None:
                    return self.error(404, "ERROR_ITEM_NOT_FOUND", "no such ticket")
                if not isinstance(item, dict) or item.get("itemtype") != "Ticket" \
                        or str(item.get("items_id")) != match.group(1):
                    return self.error(400, "ERROR_BAD_ARRAY", "itemtype/items_id mismatch")
                ticket["followups"].append(item.get("content", ""))
                save()
            return self.answer(201, {"id": len(ticket["followups"]), "message": ""})
        match = re.fullmatch(r"Ticket/(\d+)", path)
        if match and method == "PUT":
            body = self.body()
            item = body.get("input") if isinstance(body, dict) else None
            with lock:
                ticket = state["tickets"].get(match.group(1))
                if ticket is None:
                    return self.error(404, "ERROR_ITEM_NOT_FOUND", "no such ticket")
                if not isinstance(item, dict):
                    return self.error(400, "ERROR_BAD_ARRAY", "input is required")
                ticket.update({k: v for k, v in item.items() if k != "id"})
                save()
            return self.answer(200, [{match.group(1): True, "message": ""}])
        if path == "search/Ticket" and method == "GET":
            query = dict(urllib.parse.parse_qsl(url.query))
            if query.get("criteria[0][field]") != "1" or \
                    query.get("criteria[0][searchtype]") != "contains":
                return self.error(400, "ERROR_BAD_ARRAY", "only name/contains is mocked")
            value = query.get("criteria[0][value]", "")
            with lock:
                state["searches"] += 1
                save()
                rows = [
                    {"1": t["name"], "2": t["id"]}
                    for t in state["tickets"].values()
                    if value.lower() in t["name"].lower()
                ]
            return self.answer(200, {"totalcount": len(rows), "count": len(rows), "data": rows})
        return self.error(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "not mocked")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def log_message(self, *args):
        pass


save()
http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
