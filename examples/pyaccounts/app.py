"""pyaccounts: register and log in over HTTP, with the accounts in a SQLite database.

Standard library only. It knows nothing of sqlite-vol: it reads DB_PATH (the database file), creates its
table if needed, writes through one connection, and on SIGTERM finishes the request in progress and exits 0.
Run it directly (`DB_PATH=./accounts.db python3 app.py`) or under `sqlite-vol exec -- python3 app.py`,
which adds the volume check, restore on first start, scheduled backups and clean shutdown around it.

  POST /register {"username": "...", "password": "..."}  -> 201 {"id": N}, 409 if taken, 400 if invalid
  POST /login    {"username": "...", "password": "..."}  -> 200 {"token": "..."}, 401 otherwise
  GET  /me       Authorization: Bearer TOKEN              -> 200 {"username": "..."}, 401 otherwise
  GET  /health                                            -> 200 {"ok": true} when the database answers
"""

import hashlib
import hmac
import json
import os
import secrets
import signal
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
"""


def log(*parts):
    print("pyaccounts:", *parts, file=sys.stderr, flush=True)


class Store:
    """One connection, one lock: a single writer, so the SQLite version in use cannot race itself."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def register(self, username, password):
        salt = os.urandom(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
        with self.lock:
            try:
                cur = self.db.execute(
                    "INSERT INTO users (username, salt, hash) VALUES (?, ?, ?)", (username, salt, digest)
                )
            except sqlite3.IntegrityError:
                return None
            return cur.lastrowid

    def login(self, username, password):
        with self.lock:
            row = self.db.execute("SELECT id, salt, hash FROM users WHERE username = ?", (username,)).fetchone()
        if row is None:
            return None
        uid, salt, digest = row
        if not hmac.compare_digest(digest, hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)):
            return None
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.db.execute("INSERT INTO tokens (token, user_id) VALUES (?, ?)", (token, uid))
        return token

    def whoami(self, token):
        with self.lock:
            row = self.db.execute(
                "SELECT u.username FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token = ?", (token,)
            ).fetchone()
        return row[0] if row else None

    def healthy(self):
        with self.lock:
            return self.db.execute("SELECT 1").fetchone() == (1,)

    def close(self):
        with self.lock:
            self.db.close()


class Handler(BaseHTTPRequestHandler):
    store = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def credentials(self):
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            username, password = str(body["username"]).strip(), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return None
        if not (1 <= len(username) <= 64) or len(password) < 8:
            return None
        return username, password

    def do_POST(self):
        creds = self.credentials()
        if creds is None:
            return self.reply(400, {"error": "send JSON {username, password}; password of 8 characters or more"})
        if self.path == "/register":
            uid = self.store.register(*creds)
            if uid is None:
                return self.reply(409, {"error": "username taken"})
            return self.reply(201, {"id": uid})
        if self.path == "/login":
            token = self.store.login(*creds)
            if token is None:
                return self.reply(401, {"error": "wrong username or password"})
            return self.reply(200, {"token": token})
        self.reply(404, {"error": "not found"})

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"ok": self.store.healthy()})
        if self.path == "/me":
            auth = self.headers.get("Authorization", "")
            user = self.store.whoami(auth[7:]) if auth.startswith("Bearer ") else None
            if user is None:
                return self.reply(401, {"error": "log in first"})
            return self.reply(200, {"username": user})
        self.reply(404, {"error": "not found"})


def main():
    path = os.environ.get("DB_PATH", "accounts.db")
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8000"))
    Handler.store = Store(path)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = False

    def stop(signum, _frame):
        log(f"received {signal.Signals(signum).name}: finishing requests and exiting")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on {host}:{server.server_address[1]}, database {path}")
    server.serve_forever()
    server.server_close()
    Handler.store.close()
    log("stopped")


if __name__ == "__main__":
    main()
