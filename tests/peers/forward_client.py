#!/usr/bin/env python3
"""tests/peers/forward_client.py -- a Fluent forward client for the specs and the bench.

Python has no msgpack module here, so this packs the few msgpack types the protocol needs
by hand (struct), as the Forward Protocol Specification v1 lays entries out.

  forward_client.py plan PORT PLAN.json [CHECK]
      runs the steps of PLAN (a JSON array) over connections to 127.0.0.1:PORT, printing
      one JSON line per thing seen. Steps:
        {"conn": k, "send": ENTRY, "pieces": n}  sends an entry (in n pieces, 30 ms apart)
        {"conn": k, "send": ENTRY, "part": [i, n]}  sends only the i-th of n pieces of it
        {"conn": k, "raw": "hex"}                sends raw bytes
        {"conn": k, "ack": "", "timeout_ms": t}  waits (20 s, or t ms) for the next ack;
                                                 prints {"ack": id or null, "seen": lines
                                                 of the file CHECK then}
        {"conn": k, "closed": true}              waits for the server to close k; prints
                                                 {"closed": k}
        {"conn": k, "close": true}               closes k
        {"sleep": ms}
      ENTRY: {"mode": "message"|"forward"|"packed"|"compressed", "tag": s, "events": [[time,
      record], ...], "chunk": id or null, "str": true (packed events as str, not bin),
      "members": n (compressed: that many gzip members)}; time is seconds, or [s, ns] for
      an EventTime.
  forward_client.py bench PORT CHUNKS RECORDS
      sends CHUNKS PackedForward entries of RECORDS events each, acks asked on every one,
      keeping at most 8 unacked; prints {"records": n, "seconds": s, "per_s": r}.
"""
import gzip
import json
import socket
import struct
import sys
import time


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 2 ** 32:
            return b"\xce" + struct.pack(">I", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        return pack_str(v.encode())
    if isinstance(v, (bytes, bytearray)):
        return pack_bin(bytes(v))
    if isinstance(v, list):
        return pack_array_head(len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def pack_str(b):
    n = len(b)
    if n < 32:
        return bytes([0xa0 | n]) + b
    if n < 256:
        return b"\xd9" + bytes([n]) + b
    if n < 65536:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def pack_bin(b):
    n = len(b)
    if n < 256:
        return b"\xc4" + bytes([n]) + b
    if n < 65536:
        return b"\xc5" + struct.pack(">H", n) + b
    return b"\xc6" + struct.pack(">I", n) + b


def pack_array_head(n):
    if n < 16:
        return bytes([0x90 | n])
    if n < 65536:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def pack_time(t):
    if isinstance(t, list):         # EventTime: ext type 0, uint32 seconds, uint32 ns
        return b"\xd7\x00" + struct.pack(">II", t[0], t[1])
    return pack(t)


def pack_event(t, rec):
    return b"\x92" + pack_time(t) + pack(rec)


def entry(e):
    mode, tag, events = e["mode"], e.get("tag", "test"), e.get("events", [])
    option = {}
    if e.get("chunk"):
        option["chunk"] = e["chunk"]
    if mode == "message":
        t, rec = events[0]
        out = pack_array_head(4 if option else 3) + pack(tag) + pack_time(t) + pack(rec)
    elif mode == "forward":
        out = (pack_array_head(3 if option else 2) + pack(tag) + pack_array_head(len(events))
               + b"".join(pack_event(t, r) for t, r in events))
    else:
        body = b"".join(pack_event(t, r) for t, r in events)
        if mode == "compressed":
            option["compressed"] = "gzip"
            k = max(1, e.get("members", 1))
            cut = [len(body) * i // k for i in range(k + 1)]
            body = b"".join(gzip.compress(body[cut[i]:cut[i + 1]]) for i in range(k))
        option["size"] = len(events)
        packed = pack_str(body) if e.get("str") else pack_bin(body)
        out = pack_array_head(3) + pack(tag) + packed
    if option:
        out += pack(option)
    return out


class Conn:
    def __init__(self, port):
        for _ in range(400):
            try:
                self.s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.025)
        else:
            raise SystemExit("cannot connect to 127.0.0.1:%d" % port)
        self.buf = b""
        self.eof = False

    def fill(self, deadline):
        self.s.settimeout(max(0.01, deadline - time.time()))
        try:
            got = self.s.recv(65536)
        except socket.timeout:
            return
        except OSError:
            got = b""
        if not got:
            self.eof = True
        self.buf += got

    def next_ack(self, deadline):
        """The next {"ack": id} from the server (a fixmap of one str key, str value)."""
        while time.time() < deadline:
            if len(self.buf) >= 6 and self.buf[0] == 0x81 and self.buf[1:5] == b"\xa3ack":
                n = self.buf[5] & 0x1f
                if len(self.buf) >= 6 + n:
                    ack = self.buf[6:6 + n].decode()
                    self.buf = self.buf[6 + n:]
                    return ack
            if self.eof:
                return None
            self.fill(deadline)
        return None


def lines_of(path):
    if not path:
        return None
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def say(obj):
    print(json.dumps(obj), flush=True)


def run_plan(port, plan_path, check):
    with open(plan_path) as f:
        plan = json.load(f)
    conns = {}
    for step in plan:
        if "sleep" in step:
            time.sleep(step["sleep"] / 1000)
            continue
        k = step["conn"]
        if k not in conns:
            conns[k] = Conn(port)
        c = conns[k]
        if "send" in step or "raw" in step:
            data = entry(step["send"]) if "send" in step else bytes.fromhex(step["raw"])
            pieces = max(1, step.get("pieces", 1))
            which = range(pieces)
            if "part" in step:
                pieces = step["part"][1]
                which = [step["part"][0] - 1]
            cut = [len(data) * i // pieces for i in range(pieces + 1)]
            for i in which:
                c.s.sendall(data[cut[i]:cut[i + 1]])
                if i + 1 < pieces:
                    time.sleep(0.03)
        elif "ack" in step:
            got = c.next_ack(time.time() + step.get("timeout_ms", 20000) / 1000)
            say({"conn": k, "ack": got, "seen": lines_of(check)})
        elif step.get("closed"):
            deadline = time.time() + 20
            while not c.eof and time.time() < deadline:
                c.fill(deadline)
            say({"conn": k, "closed": c.eof})
        elif step.get("close"):
            c.s.close()
            del conns[k]


def run_bench(port, chunks, records):
    events = [[[1700000000 + i, 0], {"host": "web-%d" % (i % 7), "level": "info",
               "msg": "GET /api/items/%d 200" % i, "bytes": 512 + i}] for i in range(records)]
    body = b"".join(pack_event(t, r) for t, r in events)
    c = Conn(port)
    window, sent, acked = 8, 0, 0
    start = time.time()
    while acked < chunks:
        while sent < chunks and sent - acked < window:
            sent += 1
            c.s.sendall(pack_array_head(3) + pack("bench") + pack_bin(body)
                        + pack({"chunk": "c%d" % sent, "size": records}))
        if c.next_ack(time.time() + 60) is None:
            raise SystemExit("no ack after %d chunks" % acked)
        acked += 1
    took = time.time() - start
    say({"records": chunks * records, "seconds": round(took, 3),
         "per_s": int(chunks * records / took)})


if __name__ == "__main__":
    if sys.argv[1] == "plan":
        run_plan(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif sys.argv[1] == "bench":
        run_bench(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
