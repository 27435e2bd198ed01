#!/usr/bin/env python3
"""tests/peers/http_server.py -- the HTTP server an HTTP sink under test sends to.

Listens on 127.0.0.1:PORT (HTTP/1.1, so connections stay open between requests) and
appends one JSON line per request to LOG: {"conn": the connection's number (1, 2, ...
in the order they were accepted), "status": what it replied, "method", "path",
"content_type", "body": the body as text}. A spec reads LOG to see exactly what
arrived, in which requests, over how many connections.

  http_server.py PORT LOG [--fail-first K [--fail-from N]] [--hang-first K]
                          [--reject MARKER] [--tls CERT KEY] [--count-only]

--fail-first K   replies 500 to the first K requests (a server in trouble)
--fail-from N    ... to K requests from the Nth on instead (an outage mid-stream)
--hang-first K   never replies to the first K requests (logged with status 0): it
                 holds each for 2 s, then closes its connection (a server that hangs)
--reject MARKER  replies 400 "rejected: MARKER" to a body that holds MARKER
--tls CERT KEY   serves HTTPS with that certificate and key (PEM files)
--count-only     logs only {"conn", "status", "lines"} per request (for the bench)
"""
import argparse
import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("log")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-from", type=int, default=1)
    ap.add_argument("--hang-first", type=int, default=0)
    ap.add_argument("--reject")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--count-only", action="store_true")
    args = ap.parse_args()

    lock = threading.Lock()
    state = {"requests": 0, "conns": 0}
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # the reply's headers and body go out at once, not held back by Nagle's
            # algorithm until the client's delayed ACK (40 ms a request)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with lock:
                state["conns"] += 1
                self.conn = state["conns"]

        def log_message(self, *a):
            pass

        def reply(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            with lock:
                state["requests"] += 1
                k = state["requests"]
            failing = k - args.fail_from + 1
            if k <= args.hang_first:
                status, text = 0, None
            elif 1 <= failing <= args.fail_first:
                status, text = 500, "failing on purpose (%d of %d)" % (failing, args.fail_first)
            elif args.reject and args.reject.encode() in body:
                status, text = 400, "rejected: " + args.reject
            else:
                status, text = 200, "ok"
            if args.count_only:
                entry = {"conn": self.conn, "status": status, "lines": body.count(b"\n")}
            else:
                entry = {"conn": self.conn, "status": status, "method": self.command,
                         "path": self.path, "content_type": self.headers.get("Content-Type"),
                         "body": body.decode("utf-8", "replace")}
            with lock:
                log.write(json.dumps(entry) + "\n")
            if status == 0:
                time.sleep(2)
                self.close_connection = True
                return
            self.reply(status, text)

        do_POST = do_PUT = do_PATCH = handle_body

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
