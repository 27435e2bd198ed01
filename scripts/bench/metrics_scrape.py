#!/usr/bin/env python3
"""Scrapes http://127.0.0.1:PORT/metrics back to back over one keep-alive connection (as
Prometheus does), N times at least and for QUIET seconds at least. Prints how many, the median, 99th percentile and largest time per scrape in ms,
the bytes and lines of the last answer, and the job's source rate (records/s, from
sluice_operator_records_out_total of kind "source") while it was scraped back to back and
then over QUIET seconds with two scrapes only. For scripts/bench/metrics.sh."""
import http.client
import re
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
quiet = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
SOURCE = re.compile(rb'^sluice_operator_records_out_total\{[^\n]*kind="source"\} (\S+)$', re.M)


def scrape():
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit("scrape: status %d: %s" % (r.status, body[:200]))
    return body


def read_count():
    """(time, records the source has read) as of a fresh publish (every 500 ms)."""
    first = SOURCE.search(scrape()).group(1)
    while True:
        body = scrape()
        count = SOURCE.search(body).group(1)
        if count != first:
            return time.perf_counter(), float(count)
        time.sleep(0.01)


times = []
t0, c0 = read_count()
while len(times) < n or time.perf_counter() - t0 < quiet:
    t = time.perf_counter()
    body = scrape()
    times.append((time.perf_counter() - t) * 1000)
t1, c1 = read_count()
time.sleep(quiet)
t2, c2 = read_count()
times.sort()
print("%d %.3f %.3f %.3f %d %d %.0f %.0f" % (
    len(times), times[len(times) // 2], times[int(len(times) * 0.99)], times[-1], len(body),
    body.count(b"\n"), (c1 - c0) / (t1 - t0), (c2 - c1) / (t2 - t1)))
