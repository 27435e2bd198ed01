#!/usr/bin/env python3
"""tests/peers/forward_peer.py -- a Fluent forward client and server for the specs and the
bench.

Python has no msgpack module here, so this packs and reads the few msgpack types the
protocol needs by hand (struct), as the Forward Protocol Specification v1 lays entries out.

  forward_peer.py plan PORT PLAN.json [CHECK]
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
        {"conn": k, "shutdown": true}            ends k's sending side (acks still read)
        {"sleep": ms}
      ENTRY: {"mode": "message"|"forward"|"packed"|"compressed", "tag": s, "events": [[time,
      record], ...], "chunk": id or null, "str": true (packed events as str, not bin),
      "members": n (compressed: that many gzip members)}; time is seconds, [s, ns] for an
      EventTime, or {"v2": time} for Fluent Bit's [time, metadata].
  forward_peer.py bench PORT CHUNKS RECORDS
      sends CHUNKS PackedForward entries of RECORDS events each, acks asked on every one,
      keeping at most 8 unacked; prints {"records": n, "seconds": s, "per_s": r}.
  forward_peer.py server PORT SILENT
      a server (Forward-mode entries, as sl.sink.forward sends them): prints one JSON line
      {"conn": k, "tag": s, "chunk": id, "times": [ms...], "records": [...]} per entry; the
      first SILENT connections are never acked (a server that hangs), the later ones are.
      Runs until killed.
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
    if isinstance(t, dict):         # Fluent Bit's event format v2: [time, metadata]
        return b"\x92" + pack_time(t["v2"]) + pack({"source": "v2"})
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


class Reader:
    """Reads one msgpack object from bytes: the types sl.sink.forward writes."""

    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise IndexError
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def num(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def obj(self):
        c = self.take(1)[0]
        if c <= 0x7f:
            return c
        if c >= 0xe0:
            return c - 256
        if 0x80 <= c <= 0x8f:
            return self.map(c & 0x0f)
        if 0x90 <= c <= 0x9f:
            return [self.obj() for _ in range(c & 0x0f)]
        if 0xa0 <= c <= 0xbf:
            return self.take(c & 0x1f).decode()
        simple = {0xc0: None, 0xc2: False, 0xc3: True}
        if c in simple:
            return simple[c]
        sized = {0xd9: (">B", 1), 0xda: (">H", 2), 0xdb: (">I", 4),
                 0xc4: (">B", 1), 0xc5: (">H", 2), 0xc6: (">I", 4)}
        if c in sized:
            n = self.num(*sized[c])
            data = self.take(n)
            return data.decode() if c >= 0xd9 else data
        fixed = {0xcc: (">B", 1), 0xcd: (">H", 2), 0xce: (">I", 4), 0xcf: (">Q", 8),
                 0xd0: (">b", 1), 0xd1: (">h", 2), 0xd2: (">i", 4), 0xd3: (">q", 8),
                 0xca: (">f", 4), 0xcb: (">d", 8)}
        if c in fixed:
            return self.num(*fixed[c])
        if c == 0xd7:                   # fixext 8: an EventTime -> ms
            self.take(1)
            sec, ns = struct.unpack(">II", self.take(8))
            return sec * 1000 + ns / 1e6
        if c in (0xdc, 0xdd):
            return [self.obj() for _ in range(self.num(*((">H", 2) if c == 0xdc else (">I", 4))))]
        if c in (0xde, 0xdf):
            return self.map(self.num(*((">H", 2) if c == 0xde else (">I", 4))))
        raise ValueError("type byte 0x%02x" % c)

    def map(self, n):
        out = {}
        for _ in range(n):
            k = self.obj()
            out[k] = self.obj()
        return out


def serve(port, silent):
    import threading
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    lock = threading.Lock()

    def one(s, k):
        buf = b""
        while True:
            got = s.recv(65536)
            if not got:
                return
            buf += got
            while buf:
                r = Reader(buf)
                try:
                    e = r.obj()
                except IndexError:
                    break
                buf = buf[r.i:]
                tag, evs, opt = e
                with lock:
                    say({"conn": k, "tag": tag, "chunk": opt.get("chunk"),
                         "times": [t for t, _ in evs], "records": [x for _, x in evs]})
                if k > silent and opt.get("chunk"):
                    s.sendall(pack({"ack": opt["chunk"]}))

    k = 0
    while True:
        s, _ = ls.accept()
        k += 1
        threading.Thread(target=one, args=(s, k), daemon=True).start()


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
        elif step.get("shutdown"):
            c.s.shutdown(socket.SHUT_WR)
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
    elif sys.argv[1] == "server":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
