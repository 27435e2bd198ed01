-- help.lua -- help() in the REPL and in sluice attach: the reference of a name, in a few
-- lines, from docs/reference.md's content (written out here, so that an installed sluice
-- has it without the docs).
--
-- help() lists the topics; help(x) takes a value (sl.source.file, a stream's method, a
-- stream), or a name ("window", "sl.tumbling", "job:tap", "formats"). It returns the text,
-- which the REPL prints as it is; a `help` that is not called prints the list too.
local stream = require "sluice.stream"
local sl = require "sluice"

local format, concat, sort, type = string.format, table.concat, table.sort, type

local help = {}

-- name -> { signature, text, see also (optional) }. Stream methods are "stream:NAME";
-- what a running job offers in sluice attach, "job:NAME"; topics are plain words.
local E = {}
help.entries = E

-- ---- sources -----------------------------------------------------------------------------

E["sl.source.values"] = { "sl.source.values(array)",
  "The array's elements 1..#array, in order. Bounded.",
  "sl.source.generator" }
E["sl.source.file"] = { 'sl.source.file { path, format = "lines", header, follow, max_record, ' ..
  'schema }',
  "One record per line (lines, json, csv) or per object (msgpack) of the file at path.\n" ..
  "csv: header=true makes records tables keyed by the first line's names.\n" ..
  "follow=true tails the file like tail -F (rename and truncation) and never ends;\n" ..
  "without it the source ends at the end of the file. A malformed record is dead-lettered\n" ..
  "with its line and byte offset, and the job goes on. schema = sl.schema{...}: typed\n" ..
  "records, decoded in C (json, msgpack, csv with a header; see sl.schema).",
  "formats, sl.source.stdin, dead_letters, sl.schema" }
E["sl.source.stdin"] = { 'sl.source.stdin { format = "lines", header, max_record, schema }',
  "As sl.source.file, from standard input; ends at end of input.", "formats" }
E["sl.source.generator"] = { "sl.source.generator { count, rate, fn }",
  "fn(i) for i = 1..count (fn defaults to the identity); a nil result is skipped.\n" ..
  "count=nil: unbounded. rate: records per second, paced without spinning; nil: as fast\n" ..
  "as possible. A record on which fn raises is dead-lettered." }
E["sl.source.tcp"] = { 'sl.source.tcp { listen = "host:port", format, header, max_record, ' ..
  'schema }',
  "Records from every connection to listen, framed per connection (lines, json, csv by\n" ..
  "newline; msgpack as a stream of objects). A partial record at a connection's end is\n" ..
  "dead-lettered with the peer's address. Never ends by itself.", "formats" }
E["sl.source.kafka"] = { 'sl.source.kafka { brokers, topic, group = "sluice", format = "json", ' ..
  'start = "earliest", meta, bounded, key, columns, schema, options }',
  "One record per message of topic (a name or an array), as a member of consumer group\n" ..
  "group (cooperative-sticky). A timestamp after it keeps a watermark per partition. Its\n" ..
  "offsets are in checkpoints, and go to the group after each one. meta=true gives\n" ..
  "{topic, partition, offset, key, timestamp, headers, value}; bounded=true ends at the\n" ..
  "end each partition had when assigned; options: librdkafka properties. schema =\n" ..
  "sl.schema{...}: typed values decoded in C (json, msgpack, csv with columns; with\n" ..
  "meta=true the value is typed, the wrapper a table).", "formats, sl.schema" }
E["sl.source.http"] = { 'sl.source.http { listen = "host:port", path = "/", format = "json", ' ..
  'max_body = 16 MiB, schema }',
  "One record per line of each body POSTed to path (HTTP/1.1, keep-alive, chunked). The\n" ..
  "reply comes once the records are in the job: 200 {\"accepted\":N}, 400 listing the bad\n" ..
  "lines (dead-lettered; the others flow), 413 over max_body, 503 + Retry-After while the\n" ..
  "sinks hold the sources back. schema = sl.schema{...}: typed records decoded in C\n" ..
  "(json, msgpack). See docs/http.md.", "formats, sl.schema" }
E["sl.source.forward"] = { 'sl.source.forward { listen = "host:port", max_entry }',
  "Fluent's forward protocol (Fluent Bit, Fluentd): one record {tag, time, record} per\n" ..
  "event, time in ms; all four modes, gzip included. A chunk is acked once its events are\n" ..
  "in the job. Malformed msgpack is dead-lettered and closes that connection only." }
E["sl.source.redis"] = { 'sl.source.redis { url = "redis://host:port[/db]", stream, group = ' ..
  '"sluice", consumer = "sluice", format = "fields", field, meta, start = "earliest", ' ..
  'schema }',
  "One record per entry of a Redis stream, read as consumer of group (XREADGROUP): a table\n" ..
  "of its fields (strings); format=\"json\": the JSON document in its one field (or field).\n" ..
  "meta=true adds id. Entries are acknowledged once a checkpoint covers them (at once\n" ..
  "without --state-dir); a restart reads this consumer's unacknowledged ones again.\n" ..
  "schema = sl.schema{...} (format json only): typed records decoded in C; with meta=true\n" ..
  "the schema has id = \"string\", which gets the entry id.", "sl.schema" }
E["sl.source.udp"] = { 'sl.source.udp { listen = "host:port", format }',
  "One record per datagram (lines: one per line), up to 64 KiB a datagram. Cannot push\n" ..
  "back: while the job is paused the kernel drops what overflows." }
E["sl.source.nexmark"] = { "sl.source.nexmark { events, rate = 10000, seed = 0, pace, typed }",
  'Nexmark events {type = "person"|"auction"|"bid", <type> = {...}}, generated in C and\n' ..
  "deterministic for a seed. events=nil: unbounded. rate spaces event times; pace=true\n" ..
  "also keeps to it in real time. typed=true: the same records as typed views (sl.plain)." }

-- ---- sinks -------------------------------------------------------------------------------

E["sl.sink.stdout"] = { 'sl.sink.stdout { format = "lines", columns }',
  "Writes each record to standard output. format: lines, json, csv, msgpack or table\n" ..
  "(aligned columns for people: on a terminal rows show as they come; on a pipe at the\n" ..
  "end and every 1000 rows). columns fixes csv's and table's columns.", "formats" }
E["sl.sink.file"] = { 'sl.sink.file { path, format = "lines", append = false, columns }',
  "Writes each record to the file at path (replaced unless append=true), through libuv,\n" ..
  "one write per batch. With --state-dir: exactly once across crashes.", "formats" }
E["sl.sink.null"] = { "sl.sink.null()", "Takes every record and does nothing with it." }
E["sl.sink.fn"] = { "sl.sink.fn(f)",
  "Calls f(r) for each record; a record on which f raises is dead-lettered." }
E["sl.sink.collect"] = { "sl.sink.collect()",
  "Keeps the records; sink:records() returns them after the run.", "stream:collect" }
E["sl.sink.forward"] = { 'sl.sink.forward { connect = "host:port", tag = "sluice", high, ack_timeout = "30s" }',
  "Fluent forward to Fluentd or Fluent Bit: a chunk per batch and tag, each kept until\n" ..
  "acked and sent again after a reconnect (at least once). A {tag, time, record} record is\n" ..
  "sent as that event; others with tag and their event time (else now)." }
E["sl.sink.kafka"] = { 'sl.sink.kafka { brokers, topic, key, format = "json", exactly_once, ' ..
  'high = 100000, options }',
  "Each record a message of topic, produced idempotently; key (a field or a function)\n" ..
  "chooses the partition. A message that fails is dead-lettered. exactly_once=true (with\n" ..
  "--state-dir and a Kafka source) writes a transaction per checkpoint." }
E["sl.sink.http"] = { 'sl.sink.http { url, method = "POST", format = "json", batch = 500, ' ..
  'every = "1s", headers = {}, cacert, insecure, timeout = "30s", parallel = 1, high = 4 MiB }',
  "POSTs records in batches (a JSON-lines body each) to url, keeping the connection open.\n" ..
  "Connection errors, timeouts, 5xx, 408 and 429 are retried with backoff (the same batch);\n" ..
  "another status dead-letters the batch's records with it and the reply. Above high bytes\n" ..
  "queued every source pauses. At the end of the input it waits for delivery." }
E["sl.sink.redis"] = { 'sl.sink.redis { url = "redis://host:port[/db]", stream, maxlen, ' ..
  'high = 50000 }',
  "XADD of each record's fields (a nested table as JSON), pipelined; MAXLEN ~ maxlen trims.\n" ..
  "A record that is no table of fields is dead-lettered. Above high XADDs in flight, or\n" ..
  "while the server is down, every source pauses; a checkpoint waits for every reply." }
E["sl.sink.tcp"] = { 'sl.sink.tcp { connect = "host:port", format, high = 4 MiB }',
  "Sends each record to connect, reconnecting with backoff; records wait meanwhile. Above\n" ..
  "high bytes queued every source pauses until half is written." }

-- ---- the rest of sl ------------------------------------------------------------------------

E["sl.tumbling"] = { "sl.tumbling(size)",
  "Windows of size, one after the other: [start, start + size), start a multiple of size\n" ..
  'since the epoch. size is a duration ("10s").', "stream:window, durations" }
E["sl.sliding"] = { "sl.sliding(size, slide)",
  "Windows of size starting every slide: a record is in size / slide of them.",
  "stream:window, durations" }
E["sl.session"] = { "sl.session(gap)",
  "Per key, [first event, last event + gap); sessions that touch merge.", "stream:window" }
E["sl.count_window"] = { "sl.count_window(n)",
  "Every n records of a key make one window (a partial one fires at the end of input).",
  "stream:window" }
E["sl.count"] = { "sl.count()", "An aggregate: how many records.", "stream:aggregate" }
E["sl.sum"] = { "sl.sum(field or f)", "An aggregate: the sum (compensated), nil values skipped.",
  "stream:aggregate" }
E["sl.min"] = { "sl.min(field or f)", "An aggregate: the smallest value (any Lua value).",
  "stream:aggregate" }
E["sl.max"] = { "sl.max(field or f)", "An aggregate: the largest value (any Lua value).",
  "stream:aggregate" }
E["sl.avg"] = { "sl.avg(field or f)", "An aggregate: the mean.", "stream:aggregate" }
E["sl.first"] = { "sl.first(field or f)",
  "An aggregate: the value of the earliest record by event time (else by arrival).",
  "stream:aggregate" }
E["sl.last"] = { "sl.last(field or f)",
  "An aggregate: the value of the latest record by event time (else by arrival).",
  "stream:aggregate" }
E["sl.collect"] = { "sl.collect(field or f)",
  "An aggregate: the values as an array, in arrival order.", "stream:aggregate" }
E["sl.distinct"] = { "sl.distinct(field or f)",
  "An aggregate: the approximate number of distinct values (HyperLogLog, error about\n" ..
  "0.8%, exact while small).", "stream:aggregate" }
E["sl.quantile"] = { "sl.quantile(field or f, q = 0.5)",
  "An aggregate: the approximate q-quantile (KLL sketch, rank error about 0.3%).",
  "stream:aggregate" }
E["sl.dead_letter"] = { "sl.dead_letter(sink)",
  "Sends the job's dead letters to sink instead of stderr (one JSON line each).",
  "dead_letters" }
E["sl.duration"] = { "sl.duration(d)", 'Milliseconds for a duration: sl.duration "1.5s" is 1500.',
  "durations" }
E["sl.param"] = { "sl.param(name, default)",
  "The value `--set name=value` gave on the command line, else default; a number or boolean " ..
  "default makes the value one (a bad one is a script error at the caller's line)." }
E["sl.schema"] = { 'sl.schema{name = "i64"|"f64"|"bool"|"string"|sl.schema{...}, ...}',
  "Typed records: schema = on a json, msgpack or csv (header = true) source makes C decode " ..
  "each record into fixed slots; fields read like a table's, absent ones are nil, a value " ..
  "of the wrong type sends the record to the dead letters naming the field. Records are " ..
  "read-only; sl.plain(r) gives a table. See docs/typed.md." }
E["sl.plain"] = { "sl.plain(r)",
  "The table form of a typed record (a view a typed source fills); any other value as is." }
E["sl.json"] = { "sl.json.encode(v), sl.json.decode(s), sl.json.null",
  "JSON, as the json format reads and writes it; null is sl.null." }
E["sl.msgpack"] = { "sl.msgpack.encode(v), sl.msgpack.decode(s)", "msgpack, as the format." }
E["sl.null"] = { "sl.null", "JSON null and msgpack nil inside a record (a light userdata)." }

-- ---- stream methods ------------------------------------------------------------------------

E["stream:map"] = { "stream:map(f)", "f(r) is the new record; nil drops it." }
E["stream:filter"] = { "stream:filter(f)", "Keeps the records for which f(r) is truthy." }
E["stream:flat_map"] = { "stream:flat_map(f)",
  "f(r) returns an array of records (or nil); each goes on." }
E["stream:peek"] = { "stream:peek(f)", "Calls f(r) for its side effect; r goes on." }
E["stream:take"] = { "stream:take(n)",
  "The first n records, then this branch ends (a source whose branches all ended stops)." }
E["stream:scan"] = { "stream:scan(f, init)",
  "For each record acc = f(acc, r), and a copy of acc goes on; per key on a keyed stream.\n" ..
  "acc starts as a copy of init (nil: the first record). f returning nil is an error." }
E["stream:dedupe"] = { "stream:dedupe(field or f, within)",
  "Drops a record whose value was let through less than within from it in event time\n" ..
  "(processing time without); per key and value on a keyed stream.", "durations" }
E["stream:changes"] = { "stream:changes(field or f)",
  "Only the records whose value differs (~=) from the last record's; a key's first passes." }
E["stream:batch"] = { "stream:batch(n, d)",
  "Arrays of up to n records (per key on a keyed stream); with d, a batch also goes out d\n" ..
  "of processing time after its first record came; the rest at the end of input." }
E["stream:key_by"] = { "stream:key_by(field or f)",
  "A keyed stream: records pass unchanged; window, reduce, aggregate and process work per\n" ..
  "key. A record whose key is nil is dead-lettered.", "stream:window, stream:aggregate" }
E["stream:timestamp"] = { "stream:timestamp(field or f, { out_of_orderness = 0, idle })",
  "Event time from the field (ms since the epoch). The watermark is the largest time seen\n" ..
  "minus out_of_orderness; an input silent for idle stops holding a union's watermark back.",
  "windows, durations" }
E["stream:name"] = { "stream:name(s)",
  "Names the operator just added: its id for state, metrics, taps and reload. A named\n" ..
  "operator also ends its fused stage." }
E["stream:union"] = { "stream:union(s2, ...)",
  "The records of every input; the watermark is the smallest of theirs." }
E["stream:partition"] = { "stream:partition(f)",
  "Returns two streams: the records for which f(r) is truthy, and the rest." }
E["stream:sink"] = { "stream:sink(sink)",
  "Ends the chain in a sink (sl.sink.*) and returns the stream, so more sinks can follow." }
E["stream:window"] = { "stream:window(assigner)",
  "On a keyed stream: windows per key (sl.tumbling, sl.sliding, sl.session,\n" ..
  "sl.count_window). Then aggregate, reduce or apply; allowed_lateness, trigger, late.\n" ..
  "A window fires when the watermark reaches its end plus the allowed lateness:\n" ..
  "{key=, window_start=, window_end=, <name>=value, ...}.",
  "windows, stream:aggregate, sl.tumbling" }
E["stream:window_all"] = { "stream:window_all(assigner)",
  "One set of windows for the whole stream (results have no key).", "stream:window" }
E["stream:aggregate"] = { "stream:aggregate { name = sl.count(), ... }",
  "On a windowed stream: one result per key and window with the named aggregates.\n" ..
  "On a keyed stream: the key's updated aggregates for every record.",
  "sl.count, sl.sum, sl.quantile" }
E["stream:reduce"] = { "stream:reduce(f)",
  "f(acc, r) is the new accumulator (the first record is the first). Windowed: one result\n" ..
  "per key and window; keyed: a copy of the key's accumulator for every record." }
E["stream:apply"] = { "stream:apply(f)",
  "On a windowed stream: f(key, {window_start=, window_end=}, records) returns a record,\n" ..
  "an array of records or nil, when the window fires." }
E["stream:allowed_lateness"] = { "stream:allowed_lateness(d)",
  "A window waits d more after its end before it fires for good; a record later than that\n" ..
  "is late.", "stream:late" }
E["stream:trigger"] = { "stream:trigger { every = d }",
  "Early results of every open window every d of processing time, then the final one." }
E["stream:late"] = { "stream:late()",
  "The records that came after their window closed; without it they are counted (the\n" ..
  "late column of job:metrics()) and dropped." }
E["stream:process"] = { "stream:process { init, on_record, on_timer, on_expire, reuse }",
  "Per key: init(ctx), on_record(ctx, r), on_timer(ctx, t); ctx.key, ctx.state (a table\n" ..
  "per key, checkpointed), ctx:emit(r), ctx:timer(t) (fires once the watermark is >= t),\n" ..
  "ctx:clear() (the key's state goes now), ctx.watermark. With ttl: on_expire(ctx) just\n" ..
  "before a key's state is freed. reuse = true: no record is kept past the call (typed\n" ..
  "records come as views).",
  "stream:ttl" }
E["stream:ttl"] = { "stream:ttl(d)",
  "Right after a keyed reduce, aggregate or process: a key's state is freed once it has\n" ..
  "gone d without a record: when the watermark reaches its latest event time + d (by the\n" ..
  "clock on a stream without event time). The next record starts it afresh.",
  "stream:process" }
E["stream:join"] = { "stream:join(other)",
  "Both streams keyed; then how records pair, and apply(f) with f(l, r):\n" ..
  "  :window(assigner):apply(f)    pairs in one window, when it fires (or cogroup(f(key,\n" ..
  "                                window, ls, rs)) once per key and window)\n" ..
  "  :between(lower, upper):apply(f)  pairs with lower <= r.time - l.time <= upper, at once\n" ..
  "  :ttl(d):apply(f)              every pair of a key's rows until d passes without one\n" ..
  "late() on the result gives the records that came behind the watermark.",
  "stream:left_join" }
E["stream:left_join"] = { "stream:left_join(other)",
  "As join, and also f(l, nil) for each left record once no match can come any more.",
  "stream:join" }
E["stream:lookup"] = { "stream:lookup(t, f [, { inner = true }])",
  "On a keyed stream: f(r, row) with the row of table t for r's key (nil if none; inner:\n" ..
  "such records are dropped). t is sl.table.file{...} or s:key_by(k):as_table(). With\n" ..
  "event time on both sides, r meets the row valid at its time, once the watermark passed.",
  "sl.table.file", "stream:as_table" }
E["stream:as_table"] = { "stream:as_table([deleted])",
  "A keyed stream as a table for lookup(): the latest row per key (by event time, the\n" ..
  "versions); a row for which deleted(row) is true removes its key.", "stream:lookup" }
E["sl.table.file"] = { "sl.table.file { path, format, key, follow, header, deleted }",
  "A table for lookup(): the file's records by key (a field name or a function), loaded\n" ..
  "whole before the job's other sources start; follow=true applies lines added later.\n" ..
  "Keys compare by Lua equality: a csv field that is a number is a number.", "stream:lookup" }
E["stream:collect"] = { "stream:collect()",
  "Runs what feeds the stream (its sources must be bounded, or Ctrl-C stops it) and\n" ..
  "returns the array of its records." }
E["stream:show"] = { "stream:show(n = 10)", "Prints the first n records as a table." }
E["stream:graph"] = { 'stream:graph(fmt)',
  'The operators that feed the stream, as a tree; fmt "text", "dot" or "mermaid" as\n' ..
  "sluice graph prints them." }

-- ---- a running job (sluice attach) ---------------------------------------------------------

E["job:graph"] = { "job:graph()", "The running job's operators as a tree, each with its #id." }
E["job:metrics"] = { "job:metrics()",
  "Per operator, sources and sinks included: records in and out, rates over the last\n" ..
  "seconds, errors, dead letters, late records, bytes, watermark and its lag, a sink's\n" ..
  "queued bytes, a Kafka source's lag; checkpoints; the process's memory and CPU. sluice\n" ..
  "top shows them live; run --metrics HOST:PORT serves them to Prometheus." }
E["job:tap"] = { "job:tap(pattern, n = 10)",
  'The next n records the operators pattern names emit: a name, an #id ("#3"), a kind or\n' ..
  'label ("map", "source.file") or a glob ("win*"); a sink\'s are what it receives.\n' ..
  "sluice tap PATTERN streams them until Ctrl-C." }
E["job:state"] = { "job:state(name [, key])",
  "A keyed operator's state for key (a window: each open window's current result by name);\n" ..
  "without a key, the first 20 keys that have state and how many there are." }
E["job:reload"] = { "job:reload()",
  "Compiles the script again and moves the job to it, keeping the state of operators\n" ..
  "whose name and kind are unchanged. Returns true and what changed, or nil and why not." }

-- ---- topics ----------------------------------------------------------------------------------

E["formats"] = { "formats",
  "lines: a line as a string. json: one JSON value per line. csv: RFC 4180, header=true\n" ..
  "for tables keyed by the header. msgpack: a stream of objects. table (output only):\n" ..
  "aligned columns for people." }
E["durations"] = { "durations",
  'A number of milliseconds or a string: "250ms", "1.5s", "10s", "5m", "2h", "1d".' }
E["dead_letters"] = { "dead letters",
  "A malformed input record, one a sink cannot encode, or one a function raised on is\n" ..
  "written to the dead letters (stderr as JSON, or sl.dead_letter(sink)) with where and\n" ..
  "why, and the job goes on. In the REPL each chunk's are summed up: the first, with its\n" ..
  "traceback, and how many more.", "sl.dead_letter" }
E["windows"] = { "windows",
  "Half-open [start, end), aligned to the epoch. A window fires when its operator's\n" ..
  "watermark reaches end + allowed lateness; results carry event time window_end - 1,\n" ..
  "so they can be windowed again downstream.", "stream:window, stream:timestamp" }

-- ---- lookup ------------------------------------------------------------------------------------

-- value -> its name: the functions and tables of sl, and the stream methods.
local by_value = {}
for _, part in ipairs({ "source", "sink" }) do
  for k, v in pairs(sl[part]) do by_value[v] = "sl." .. part .. "." .. k end
end
for k, v in pairs(sl) do
  if (type(v) == "function" or type(v) == "table") and by_value[v] == nil
    and k ~= "source" and k ~= "sink" then
    by_value[v] = "sl." .. k
  end
end
for k, v in pairs(stream.Stream) do
  if type(v) == "function" and not k:find("^_") then by_value[v] = "stream:" .. k end
end
by_value[sl.null] = "sl.null"

local function entry_text(name)
  local e = E[name]
  local out = { e[1], "" }
  for line in (e[2] .. "\n"):gmatch("(.-)\n") do out[#out + 1] = "  " .. line end
  if e[3] then out[#out + 1] = ""; out[#out + 1] = "See also: " .. e[3] end
  return concat(out, "\n")
end

local function sorted_names(prefix)
  local list = {}
  for name in pairs(E) do
    if prefix == nil and not name:find("[.:]") or prefix and name:sub(1, #prefix) == prefix then
      list[#list + 1] = name
    end
  end
  sort(list)
  return list
end

-- The list of every name, by group.
local function overview()
  local function names(prefix, strip)
    local list = sorted_names(prefix)
    for i, n in ipairs(list) do list[i] = strip and n:sub(#prefix + 1) or n end
    return concat(list, ", ")
  end
  local rest = {}
  for _, n in ipairs(sorted_names("sl.")) do
    if not n:find("^sl%.source%.") and not n:find("^sl%.sink%.") then rest[#rest + 1] = n end
  end
  -- "label:    a, b, c" wrapped at 88 columns under its first item
  local function group(label, list)
    local out, line = {}, format("%-11s", label)
    for i, item in ipairs(list) do
      local piece = item .. (i < #list and "," or "")
      if #line + 1 + #piece > 88 and line:find("%S%s*$") and #line > 11 then
        out[#out + 1] = line
        line = string.rep(" ", 11) .. piece
      else
        line = line .. (line:sub(-1) == " " and "" or " ") .. piece
      end
    end
    out[#out + 1] = line
    return concat(out, "\n")
  end
  local function split(text) local t = {} for w in text:gmatch("[^, ]+") do t[#t + 1] = w end return t end
  local lines = {
    "help(x) shows the reference of x: a value (help(sl.source.file)) or a name",
    '(help "window", help "job:tap"). docs/reference.md has all of it.',
    "",
    group("sources:", split(names("sl.source."))),
    group("sinks:", split(names("sl.sink."))),
    group("sl:", rest),
    group("streams:", split(names("stream:", true))),
    group("attach:", split(names("job:"))),
    group("topics:", split(names(nil))),
  }
  return concat(lines, "\n")
end

-- The names that hold `word`, for a name help does not know.
local function suggestions(word)
  local list = {}
  for name in pairs(E) do
    if name:find(word, 1, true) then list[#list + 1] = name end
  end
  sort(list)
  return list
end

local function names_of_methods()
  return (concat(sorted_names("stream:"), ", "):gsub("stream:", ""))
end

-- The help text for x (see the banner).
function help.text(x)
  if x == nil then return overview() end
  local name = by_value[x]
  if not name and stream.is_stream(x) then
    return "a " .. (x.mode and (x.mode .. " ") or "") .. "stream; its methods: " ..
      names_of_methods() .. '\n(help "map", help(s.window), ...)'
  end
  if not name and type(x) == "string" then
    local s = x:gsub("^%s+", ""):gsub("%s+$", "")
    local hits, seen = {}, {}
    for _, candidate in ipairs({ s, "sl." .. s, "stream:" .. s:gsub("^:", ""),
      "stream:" .. s:gsub("^stream%.", ""), "job:" .. s:gsub("^job%.", ""),
      (s:gsub(" ", "_")) }) do
      if E[candidate] and not seen[candidate] then
        seen[candidate] = true
        hits[#hits + 1] = entry_text(candidate)
      end
    end
    -- "collect" is both sl.collect and stream:collect: both
    if #hits > 0 then return concat(hits, "\n\n") end
    if not name then
      local sug = suggestions(s)
      if #sug == 1 then name = sug[1]
      elseif #sug > 1 then return format("%q names several: %s", s, concat(sug, ", "))
      else return format("no help for %q; help() lists every name", s) end
    end
  end
  if not name or not E[name] then
    return format("no help for this %s; help() lists every name", type(x))
  end
  return entry_text(name)
end

-- The `help` of the REPL's globals: help(x) returns the text (which the REPL prints),
-- and help itself, printed, shows the list.
help.fn = setmetatable({}, {
  __call = function(_, x) return help.text(x) end,
  __tostring = function() return overview() end,
})

return help
