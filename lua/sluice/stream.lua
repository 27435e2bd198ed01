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
  if not needs_window(self, "late") then return self end
  return new(self.node, 2, nil, { timed = self.timed })
end

function Stream:process(spec)
  if not needs_key(self, "process") then return self end
  if type(spec) ~= "table" then
    fail(format("process(): expected { init =, on_record =, on_timer = }, got %s", type(spec)))
    spec = {}
  end
  report.check_names("process()", spec, { "init", "on_record", "on_timer", "on_expire" })
  for _, f in ipairs({ "init", "on_record", "on_timer", "on_expire" }) do
    if spec[f] ~= nil and type(spec[f]) ~= "function" then
      fail(format("process(): %s must be a function, got %s", f, type(spec[f])))
    end
  end
  if spec.on_record == nil then fail("process(): on_record is required") end
  return self:_op("process", { init = spec.init, on_record = spec.on_record,
    on_timer = spec.on_timer, on_expire = spec.on_expire, key_fn = self.key_fn,
    key_field = self.key_field, label = "process" })
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
