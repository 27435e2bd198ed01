-- stream.lua -- the builder: the stream methods a script calls.
--
-- A stream is a handle on one output port of a graph node, plus whether it is keyed or
-- windowed. Every method checks its arguments, records the user's line, adds a node and
-- returns a new stream; nothing runs here. Misuse is reported through report.fail, so
-- `sluice check` can list every mistake in a script.
local graph = require "sluice.graph"
local report = require "sluice.report"
local duration = require "sluice.duration"

local type, format, setmetatable, select = type, string.format, setmetatable, select
local fail, where = report.fail, report.where

local Stream = {}
Stream.__index = Stream

local stream = { Stream = Stream }

-- A new stream on `port` of `node`; `mode` is nil, "keyed" or "windowed". `extra` holds
-- what the stream carries: timed (records have event time), key_fn/key_field (keyed).
local function new(node, port, mode, extra)
  local s = setmetatable(extra or {}, Stream)
  s.node, s.port, s.mode = node, port or 1, mode
  return s
end
stream.new = new

function stream.is_stream(v) return getmetatable(v) == Stream end

-- Checks a function argument of method `m`; a string names a record field where the
-- contract allows it (`field_ok`). Returns the function (or a field accessor) and the field.
local function want_fn(m, f, field_ok)
  if type(f) == "function" then return f end
  if field_ok and type(f) == "string" then
    return function(r) return r[f] end, f
  end
  fail(format("%s(): expected a function%s, got %s", m, field_ok and " or a field name" or "",
    type(f)))
  return function() end
end
stream.want_fn = want_fn

local function windowed_first(self, m)
  if self.mode == "windowed" then
    fail(format("%s(): this is a windowed stream; call aggregate, reduce or apply first", m))
    return true
  end
  return false
end

-- Adds a node of `kind` reading this stream, and returns the stream it outputs, which
-- keeps the event time of this one.
function Stream:_op(kind, fields, mode, extra)
  windowed_first(self, kind)
  fields = fields or {}
  fields.where = fields.where or where()
  local node = graph.node(kind, { { node = self.node, port = self.port } }, fields)
  extra = extra or {}
  if extra.timed == nil then extra.timed = self.timed end
  return new(node, 1, mode, extra)
end

-- ---- stateless operators -------------------------------------------------------------

function Stream:map(f) return self:_op("map", { fn = want_fn("map", f) }) end
function Stream:filter(f) return self:_op("filter", { fn = want_fn("filter", f) }) end
function Stream:flat_map(f) return self:_op("flat_map", { fn = want_fn("flat_map", f) }) end
function Stream:peek(f) return self:_op("peek", { fn = want_fn("peek", f) }) end

function Stream:take(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    fail(format("take(): expected a whole number >= 0, got %s", tostring(n)))
    n = 0
  end
  return self:_op("take", { n = n, label = format("take %d", n) })
end

-- scan, dedupe, changes and batch keep state: per key on a keyed stream, else one for the
-- whole stream (operator.lua; their nodes carry the key, nil when not keyed).
local function per_key(self, fields)
  if self.mode == "keyed" then fields.key_fn, fields.key_field = self.key_fn, self.key_field end
  return fields
end

-- A duration > 0 for argument `what` of method m (nil when optional and absent).
local function want_wait(m, what, d, optional)
  if d == nil and optional then return nil end
  local ms, err = duration.parse(d)
  if not ms or ms <= 0 then
    fail(format("%s(): %s: %s", m, what, err or "must be > 0"))
    return 1
  end
  return ms
end

-- Each new accumulator acc = f(acc, r), from a copy of init (nil: the first record).
function Stream:scan(f, init)
  return self:_op("scan", per_key(self, { fn = want_fn("scan", f), init = init,
    label = "scan" }))
end

-- Drops a record whose f(r) was let through less than `within` from it in event time.
function Stream:dedupe(f, within)
  local fn, field = want_fn("dedupe", f, true)
  local ms = want_wait("dedupe", "within", within)
  -- without event time, anchors expire by the clock: a timer frees them on an idle stream
  return self:_op("dedupe", per_key(self, { fn = fn, field = field, within = ms,
    early_every = not self.timed and math.max(ms, 100) or nil,
    label = format("dedupe %s", field or "fn") }))
end

-- Only the records whose f(r) differs from the last record's (of the key).
function Stream:changes(f)
  local fn, field = want_fn("changes", f, true)
  return self:_op("changes", per_key(self, { fn = fn, field = field,
    label = format("changes %s", field or "fn") }))
end

-- Arrays of up to n records; with d, a batch also goes out d after its first record came.
function Stream:batch(n, d)
  if type(n) ~= "number" or n < 1 or (n % 1 ~= 0 and n ~= math.huge) then
    fail(format("batch(): n: expected a whole number >= 1, got %s",
      type(n) == "string" and format("%q", n) or tostring(n)))
    n = 1
  end
  local ms = want_wait("batch", "d", d, true)
  return self:_op("batch", per_key(self, { n = n, max_wait = ms,
    early_every = ms and math.max(1, math.floor(ms / 10)) or nil,
    label = format("batch %s", tostring(n)) }))
end

function Stream:key_by(f)
  local fn, field = want_fn("key_by", f, true)
  return self:_op("key_by", { fn = fn, field = field,
    label = field and format("key_by %s", field) or "key_by" }, "keyed",
    { key_fn = fn, key_field = field })
end

-- Event time from `field` (or a function of the record); the watermark is the largest
-- time seen minus out_of_orderness; an input silent for `idle` stops holding it back.
function Stream:timestamp(field, opts)
  local fn, f = want_fn("timestamp", field, true)
  opts = report.want_options("timestamp()", opts, true, { "out_of_orderness", "idle" })
  local ooo, idle = 0, nil
  if opts.out_of_orderness ~= nil then
    local ms, err = duration.parse(opts.out_of_orderness)
    if err then fail("timestamp(): out_of_orderness: " .. err) end
    ooo = ms or 0
  end
  if opts.idle ~= nil then
    local ms, err = duration.parse(opts.idle)
    if err or ms <= 0 then fail("timestamp(): idle: " .. (err or "must be > 0")) end
    idle = ms
  end
  return self:_op("timestamp", { fn = fn, field = f, ooo = ooo, idle = idle,
    label = f and format("timestamp %s", f) or "timestamp" }, nil, { timed = true })
end

-- Names the operator just added: its id for state, metrics, taps and reload.
function Stream:name(s)
  if type(s) ~= "string" or s == "" then
    fail(format("name(): expected a non-empty string, got %s", type(s)))
    return self
  end
  for _, node in ipairs(graph.current().nodes) do
    if node.name == s and node ~= self.node then
      fail(format("name(): %q is already the name of the operator at %s", s, node.where or "?"))
      return self
    end
  end
  self.node.name = s
  return self
end

function Stream:union(...)
  local inputs = { { node = self.node, port = self.port } }
  for i = 1, select("#", ...) do
    local other = select(i, ...)
    if not stream.is_stream(other) then
      fail(format("union(): argument %d is not a stream (got %s)", i, type(other)))
    else
      inputs[#inputs + 1] = { node = other.node, port = other.port }
    end
  end
  local timed = self.timed
  for i = 1, select("#", ...) do
    local other = select(i, ...)
    if stream.is_stream(other) and not other.timed then timed = false end
  end
  windowed_first(self, "union")
  return new(graph.node("union", inputs, { where = where() }), 1, nil, { timed = timed or nil })
end

-- Returns two streams: the records for which f(r) is truthy, and the rest.
function Stream:partition(f)
  windowed_first(self, "partition")
  local node = graph.node("partition", { { node = self.node, port = self.port } },
    { fn = want_fn("partition", f), where = where() })
  return new(node, 1, nil, { timed = self.timed }), new(node, 2, nil, { timed = self.timed })
end

-- Ends the chain in `spec` (a sink from sl.sink.*); returns this stream for more sinks.
-- Streams that name the same sink object all write to that one sink.
function Stream:sink(spec)
  if windowed_first(self, "sink") then return self end
  if type(spec) ~= "table" or not spec.is_sink then
    fail(format("sink(): expected a sink from sl.sink.* (e.g. sl.sink.stdout{}), got %s",
      type(spec)))
    return self
  end
  local input = { node = self.node, port = self.port }
  if spec.node and spec.node.job == graph.current() then
    graph.connect(spec.node, input)
  else
    spec.node = graph.node("sink", { input }, { spec = spec, label = spec.label, where = where(),
      job = graph.current() })
  end
  return self
end

-- ---- keyed and windowed operators ------------------------------------------------------

local function needs_key(self, m)
  if self.mode ~= "keyed" then
    fail(format("%s(): stream is not keyed; call key_by first", m))
    return false
  end
  return true
end

local function needs_window(self, m)
  if self.mode ~= "windowed" then
    fail(format("%s(): stream is not windowed; call window or window_all first", m))
    return false
  end
  return true
end

local assigners = { tumbling = true, sliding = true, session = true, count = true }

-- A window node: the assigner now; aggregate, reduce or apply fills in what it computes.
local function window_node(self, m, assigner, key_fn, key_field)
  if type(assigner) ~= "table" or not assigners[assigner.assigner] then
    fail(format("%s(): expected an assigner (sl.tumbling, sl.sliding, sl.session, " ..
      "sl.count_window), got %s", m, type(assigner)))
    assigner = { assigner = "count", n = 1 }
  end
  if assigner.assigner ~= "count" and not self.timed then
    fail(format("%s(): the stream has no event time; call timestamp first", m))
  end
  local node = graph.node("window", { { node = self.node, port = self.port } },
    { assigner = assigner, key_fn = key_fn, key_field = key_field, lateness = 0,
      where = where(), label = format("%s %s", m, assigner.assigner) })
  return new(node, 1, "windowed", { timed = self.timed, key_fn = key_fn })
end

function Stream:window(assigner)
  if not needs_key(self, "window") then return self end
  return window_node(self, "window", assigner, self.key_fn, self.key_field)
end

function Stream:window_all(assigner)
  if windowed_first(self, "window_all") then return self end
  return window_node(self, "window_all", assigner, nil, nil)
end

-- Checks an aggregate spec {name = sl.count(), ...}; returns the sorted list of entries.
local function want_aggregates(m, spec)
  local list = {}
  if type(spec) ~= "table" then
    fail(format("%s(): expected a table of aggregates, e.g. { n = sl.count() }, got %s", m,
      type(spec)))
    return list
  end
  for name, agg in pairs(spec) do
    if type(name) ~= "string" then
      fail(format("%s(): aggregate names must be strings, got %s", m, type(name)))
    elseif type(agg) ~= "table" or not agg.aggregate then
      fail(format("%s(): %s is not an aggregate (use sl.count(), sl.sum(f), ...)", m, name))
    else
      list[#list + 1] = { name = name, agg = agg }
    end
  end
  if #list == 0 and type(spec) == "table" then
    fail(format("%s(): no aggregates given", m))
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- Sets what a window computes; returns the stream of its results.
local function window_computes(self, m, what, fields)
  local node = self.node
  if node.computes then
    fail(format("%s(): this window already has %s", m, node.computes))
    return self
  end
  node.computes = what
  for k, v in pairs(fields) do node[k] = v end
  node.label = format("%s %s", node.label, what)
  return new(node, 1, nil, { timed = self.timed })
end

function Stream:aggregate(spec)
  if self.mode == "windowed" then
    return window_computes(self, "aggregate", "aggregate",
      { aggregates = want_aggregates("aggregate", spec) })
  end
  if not needs_key(self, "aggregate") then return self end
  return self:_op("rolling_aggregate", { aggregates = want_aggregates("aggregate", spec),
    key_fn = self.key_fn, key_field = self.key_field, label = "aggregate" })
end

function Stream:reduce(f)
  if self.mode == "windowed" then
    return window_computes(self, "reduce", "reduce", { fn = want_fn("reduce", f) })
  end
  if not needs_key(self, "reduce") then return self end
  return self:_op("rolling_reduce", { fn = want_fn("reduce", f), key_fn = self.key_fn,
    key_field = self.key_field, label = "reduce" })
end

function Stream:apply(f)
  if not needs_window(self, "apply") then return self end
  return window_computes(self, "apply", "apply", { fn = want_fn("apply", f) })
end

function Stream:allowed_lateness(d)
  if not needs_window(self, "allowed_lateness") then return self end
  local ms, err = duration.parse(d)
  if not ms then fail("allowed_lateness(): " .. err) end
  self.node.lateness = ms or 0
  return self
end

-- Early results every `every` of processing time, then the final one.
function Stream:trigger(opts)
  if not needs_window(self, "trigger") then return self end
  if type(opts) ~= "table" or opts.every == nil then
    fail("trigger(): expected { every = duration }")
    return self
  end
  report.check_names("trigger()", opts, { "every" })
  local ms, err = duration.parse(opts.every)
  if not ms or ms <= 0 then fail("trigger(): every: " .. (err or "must be > 0")) end
  self.node.early_every = ms
  return self
end

-- The records that arrived after their window closed (lateness included).
function Stream:late()
  -- a join's or a lookup's results have its late records beside them, as a window's do
  local kind = self.node.kind
  if (kind == "join" or kind == "lookup") and self.port == 1 and self.mode == nil then
    return new(self.node, 2, nil, { timed = self.timed })
  end
  if not needs_window(self, "late") then return self end
  return new(self.node, 2, nil, { timed = self.timed })
end

-- ---- tables -------------------------------------------------------------------------------
--
-- A table is { is_table = true, stream = a keyed stream of its rows, deleted = f or nil }:
-- from sl.table.file (source.lua) or s:key_by(k):as_table(). lookup.lua runs s:lookup(t, f).

-- The latest row per key of this keyed stream, as a table for lookup(); a row for which
-- deleted(row) is true removes its key (as_table(f) or as_table { deleted = f }).
function Stream:as_table(opts)
  local t = { is_table = true, stream = self, where = where() }
  if not needs_key(self, "as_table") then t.bad = true; return t end
  local deleted = opts
  if type(opts) == "table" then
    report.check_names("as_table()", opts, { "deleted" })
    deleted = opts.deleted
  end
  if deleted ~= nil and type(deleted) ~= "function" then
    fail(format("as_table(): deleted must be a function, got %s", type(deleted)))
    deleted = nil
  end
  t.deleted = deleted
  return t
end

-- f(r, row) for each record, with the row of table t for the record's key (nil if none;
-- opts.inner: such records are dropped).
function Stream:lookup(t, f, opts)
  if windowed_first(self, "lookup") then return self end
  local ok = needs_key(self, "lookup")
  if type(t) ~= "table" or not t.is_table then
    fail(format("lookup(): expected a table (sl.table.file{...} or s:key_by(k):as_table()), " ..
      "got %s", type(t)))
    ok = false
  elseif t.bad then
    ok = false
  end
  local fn = want_fn("lookup", f)
  opts = report.want_options("lookup()", opts, true, { "inner" })
  if not ok then return new(self.node, self.port, nil, { timed = self.timed }) end
  local rows = t.stream
  local temporal = (self.timed and rows.timed) and true or false
  local node = graph.node("lookup", { { node = self.node, port = self.port },
    { node = rows.node, port = rows.port } }, { fn = fn, inner = opts.inner == true,
    key_fn = self.key_fn, key_field = self.key_field,
    table_key = { key_fn = rows.key_fn, key_field = rows.key_field }, deleted = t.deleted,
    temporal = temporal, where = where(),
    label = temporal and "lookup temporal" or "lookup" })
  return new(node, 1, nil, { timed = self.timed })
end

-- ---- joins --------------------------------------------------------------------------------
--
-- a:join(b) and a:left_join(b) give a join builder, not a stream: it takes how records pair
-- (window, between or ttl), then apply(f) (or cogroup(f) on a window) adds the join node
-- and returns the stream of its results; late() on that stream gives the records that came
-- behind the watermark. join.lua runs the node.
local Join = {}
Join.__index = Join
Join.__tostring = function(self)
  return format("<%s at %s: add window(assigner), between(lower, upper) or ttl(d), then apply(f)>",
    self.m, self.where or "?")
end

local function join_builder(self, other, m, outer)
  windowed_first(self, m)
  local b = setmetatable({ left = self, right = other, m = m, outer = outer, where = where() },
    Join)
  if not stream.is_stream(other) then
    fail(format("%s(): expected a stream to join with, got %s", m, type(other)))
    b.bad = true
  else
    if self.mode ~= "keyed" then
      fail(format("%s(): the left stream is not keyed; call key_by first", m))
      b.bad = true
    end
    if other.mode ~= "keyed" then
      fail(format("%s(): the right stream (the argument) is not keyed; call key_by on it first", m))
      b.bad = true
    end
  end
  return b
end

function Stream:join(other) return join_builder(self, other, "join", false) end
function Stream:left_join(other) return join_builder(self, other, "left_join", true) end

-- A join that pairs by event time needs it on both sides.
function Join:_needs_time(m)
  if self.bad then return end
  for _, side in ipairs({ { self.left, "left" }, { self.right, "right" } }) do
    if not side[1].timed then
      fail(format("%s(): the %s stream has no event time; call timestamp on it first", m, side[2]))
    end
  end
end

function Join:_how(m, how)
  if self.how then
    fail(format("%s(): this join already pairs by %s", m, self.how))
    return false
  end
  self.how = how
  return true
end

-- Pairs in the same window of `assigner` (tumbling, sliding or session), when it fires.
function Join:window(assigner)
  if not self:_how("window", "window") then return self end
  if type(assigner) ~= "table" or not assigners[assigner.assigner]
    or assigner.assigner == "count" then
    fail(format("window(): a join takes sl.tumbling, sl.sliding or sl.session, got %s",
      type(assigner) == "table" and tostring(assigner.assigner) .. " window" or type(assigner)))
    assigner = { assigner = "tumbling", size = 1 }
  end
  self.assigner = assigner
  self:_needs_time("window")
  return self
end

-- A signed duration: "-5s", "5s", -5000.
local function signed_duration(m, d)
  local sign = 1
  if type(d) == "number" and d < 0 then sign, d = -1, -d end
  if type(d) == "string" and d:match("^%s*%-") then sign, d = -1, d:gsub("^%s*%-", "") end
  local ms, err = duration.parse(d)
  if not ms then fail(m .. ": " .. err); return 0 end
  return sign * ms
end

-- Pairs where lower <= r.time - l.time <= upper.
function Join:between(lower, upper)
  if not self:_how("between", "between") then return self end
  self.lower = signed_duration("between(): lower", lower)
  self.upper = signed_duration("between(): upper", upper)
  if self.lower > self.upper then
    fail(format("between(): lower (%s) is above upper (%s)", tostring(lower), tostring(upper)))
  end
  self:_needs_time("between")
  return self
end

-- Every pair of a key's rows, kept until `d` passes without a new row of that key.
function Join:ttl(d)
  if not self:_how("ttl", "ttl") then return self end
  local ms, err = duration.parse(d)
  if not ms or ms <= 0 then fail("ttl(): " .. (err or "must be > 0")); ms = 1 end
  self.ttl_ms = ms
  if not self.bad and (self.left.timed or false) ~= (self.right.timed or false) then
    fail("ttl(): one stream has event time and the other not: call timestamp on both, or on " ..
      "neither (then the ttl is processing time)")
  end
  return self
end

local function side_of(s) return { key_fn = s.key_fn, key_field = s.key_field } end

function Join:_node(m, fn)
  if not self.how then
    fail(format("%s(): say first how records pair: window(assigner), between(lower, upper) " ..
      "or ttl(d)", m))
    self.how = "ttl"
    self.ttl_ms = 1
  end
  if self.node then
    fail(format("%s(): this join already has its function (at %s)", m, self.node.where or "?"))
  end
  if self.bad then return stream.new(graph.node("join", {}, { where = where() }), 1) end
  local label = format("%s %s", self.m, self.how)
  if self.how == "window" then label = label .. " " .. self.assigner.assigner end
  local node = graph.node("join", { { node = self.left.node, port = self.left.port },
    { node = self.right.node, port = self.right.port } }, {
    how = self.how, assigner = self.assigner, lower = self.lower, upper = self.upper,
    ttl = self.ttl_ms, fn = fn, computes = m, outer = self.outer,
    left = side_of(self.left), right = side_of(self.right), where = where(), label = label })
  self.node = node
  return new(node, 1, nil, { timed = self.left.timed and self.right.timed or nil })
end

-- f(l, r) for each pair (r nil for a left record without a match, in a left_join).
function Join:apply(f) return self:_node("apply", want_fn("apply", f)) end

-- f(key, window, ls, rs) once per key and window, with both sides' records.
function Join:cogroup(f)
  if self.how ~= "window" then
    fail("cogroup(): only a window join groups records; call window(assigner) first")
  end
  return self:_node("cogroup", want_fn("cogroup", f))
end

function Stream:process(spec)
  if not needs_key(self, "process") then return self end
  if type(spec) ~= "table" then
    fail(format("process(): expected { init =, on_record =, on_timer = }, got %s", type(spec)))
    spec = {}
  end
  report.check_names("process()", spec,
    { "init", "on_record", "on_timer", "on_expire", "reuse" })
  for _, f in ipairs({ "init", "on_record", "on_timer", "on_expire" }) do
    if spec[f] ~= nil and type(spec[f]) ~= "function" then
      fail(format("process(): %s must be a function, got %s", f, type(spec[f])))
    end
  end
  if spec.on_record == nil then fail("process(): on_record is required") end
  if spec.reuse ~= nil and type(spec.reuse) ~= "boolean" then
    fail(format("process(): reuse must be true or false, got %s", type(spec.reuse)))
  end
  -- reuse = true: the functions keep no record past the call (only values read from it),
  -- so typed records come as they are, not copied into tables (Flink's object reuse)
  return self:_op("process", { init = spec.init, on_record = spec.on_record,
    on_timer = spec.on_timer, on_expire = spec.on_expire, key_fn = self.key_fn,
    key_field = self.key_field, reuse = spec.reuse == true, label = "process" })
end

-- State expiry on the keyed reduce, aggregate or process just added (expiry.lua): a key's
-- state is freed once it has gone d without a record, in event time (the operator's
-- watermark), or by the clock on a stream without event time. Returns this stream.
local expires = { rolling_reduce = "reduce", rolling_aggregate = "aggregate", process = "process" }
function Stream:ttl(d)
  local node = self.node
  if not expires[node.kind] or self.port ~= 1 then
    fail("ttl(): expected right after a keyed reduce, aggregate or process " ..
      "(a window frees its state when it fires)")
    return self
  end
  if node.ttl then
    fail(format("ttl(): this %s already has a ttl", expires[node.kind]))
    return self
  end
  local ms, err = duration.parse(d)
  if not ms or ms <= 0 then
    fail("ttl(): " .. (err or "must be > 0"))
    return self
  end
  node.ttl, node.ttl_clock = ms, not self.timed
  node.label = format("%s ttl %s", node.label, type(d) == "string" and d:match("^%s*(.-)%s*$")
    or (ms .. "ms"))
  return self
end

Stream.__tostring = function(self)
  return format("<stream: %s at %s; :collect(), :show(n), :graph()>", graph.label(self.node),
    self.node.where or "?")
end

return stream
