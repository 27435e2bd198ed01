-- kafka.lua -- sl.source.kafka and sl.sink.kafka: Kafka topics in and out, on librdkafka.
--
-- The source is a consumer-group member (cooperative-sticky assignment) whose messages C
-- decodes a batch at a time (host/kafka_consumer.c); each batch holds one partition's
-- records in order, and the stage after the source is told which partition, so that
-- `timestamp` keeps a watermark per partition (stage.lua). Its position is the next
-- offset of every partition it has read: checkpoints keep it, a restart seeks there, and
-- the group is told after each checkpoint (or every few seconds without checkpoints).
--
-- The sink produces with an idempotent producer (host/kafka_producer.c). A message that
-- fails is dead-lettered with why; when librdkafka's queue is full, the rest of the batch
-- waits here and the sources pause (flow.lua) until deliveries drain it. With
-- exactly_once=true the sink writes in transactions, one per checkpoint interval, which
-- checkpoint.lua commits once the checkpoint is durable; see docs/reference.md.
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local typed = require "sluice.typed"
local schema = require "sluice.schema"

local core = host.core
local type, format, tostring, pairs, ipairs = type, string.format, tostring, pairs, ipairs
local fail, want_string = report.fail, report.want_string
local plain = typed.plain

local kafka = {}

local source_formats = { lines = true, json = true, csv = true, msgpack = true }
local sink_formats = { lines = true, json = true, msgpack = true }
local starts = { earliest = true, latest = true }

local COMMIT_EVERY_MS = 5000    -- without checkpoints: how often offsets are handed to the
                                -- consumer, whose auto-commit timer sends them (kafka_consumer.c)
local FLUSH_MS = 30000          -- how long the end of a job waits for deliveries

-- ---- declarations ------------------------------------------------------------------------

-- options={...}: librdkafka properties passed through (security, SASL, timeouts).
local function want_properties(m, opts)
  local o = opts.options
  if o == nil then return nil end
  if type(o) ~= "table" then
    fail(format("%s: options must be a table of librdkafka properties, got %s", m, type(o)))
    return nil
  end
  for k, v in pairs(o) do
    local tv = type(v)
    if type(k) ~= "string" or not (tv == "string" or tv == "number" or tv == "boolean") then
      fail(format("%s: options: %s = %s is not a librdkafka property (name = string, " ..
        "number or boolean)", m, tostring(k), tostring(v)))
    end
  end
  return o
end

local function want_brokers(m, opts)
  local b = opts.brokers
  if type(b) ~= "string" or b == "" then
    fail(format('%s: brokers is required (a string "host:port[,host:port...]")', m))
    return "?"
  end
  return b
end

-- A source's schema option (sl.schema): the message values are typed records, which C
-- decodes into slots (json, msgpack, or csv with columns naming the fields): the rule
-- schema.want applies, why a schema does not fit, or nil.
local function schema_fits(_, opts)
  local f = opts.format or "json"
  if f == "lines" then
    return "schema needs format json, msgpack, or csv with columns (got lines)"
  end
  if f == "csv" and type(opts.columns) ~= "table" then
    return "schema with format csv needs columns = {...} (the field of each column)"
  end
  return nil
end

-- kafka{brokers, topic (a name or an array), group, format, start, meta, bounded, key,
-- columns, schema, options}: one record per message. Returns the source's spec.
function kafka.source_spec(opts)
  local m = "source.kafka()"
  opts = report.want_options(m, opts, false, { "brokers", "topic", "group", "format", "start",
    "meta", "bounded", "key", "columns", "schema", "options" })
  local topics = opts.topic
  if type(topics) == "string" then topics = { topics } end
  if type(topics) ~= "table" or #topics == 0 then
    fail(format("%s: topic is required (a name or an array of names)", m))
    topics = { "?" }
  end
  for _, t in ipairs(topics) do
    if type(t) ~= "string" or t == "" then
      fail(format("%s: topic names must be non-empty strings, got %s", m, tostring(t)))
    end
  end
  local f = opts.format or "json"
  if not source_formats[f] then
    fail(format("%s: unknown format %q (lines, json, csv, msgpack)", m, tostring(f)))
  end
  local start = opts.start or "earliest"
  if not starts[start] then
    fail(format('%s: start must be "earliest" or "latest", got %s', m, tostring(start)))
    start = "earliest"
  end
  if opts.columns ~= nil and type(opts.columns) ~= "table" then
    fail(format("%s: columns must be an array of csv column names", m))
  end
  return { type = "kafka", brokers = want_brokers(m, opts), topics = topics,
    group = want_string(m, opts, "group", "sluice"), format = f, start = start,
    meta = opts.meta == true, bounded = opts.bounded == true,
    key = want_string(m, opts, "key", nil), columns = opts.columns,
    schema = schema.want(m, opts, schema_fits), options = want_properties(m, opts),
    label = "source.kafka " .. table.concat(topics, ",") }
end

-- kafka{brokers, topic, key, format, exactly_once, high, options}: key is a field name or
-- a function of the record giving the message key (so the partition). Returns the spec.
function kafka.sink_spec(opts)
  local m = "sink.kafka()"
  opts = report.want_options(m, opts, false, { "brokers", "topic", "key", "format",
    "exactly_once", "high", "options" })
  local topic = want_string(m, opts, "topic", nil)
  if not topic then
    fail(format("%s: topic is required (a string)", m))
    topic = "?"
  end
  local f = opts.format or "json"
  if not sink_formats[f] then
    fail(format("%s: unknown format %q (json, lines, msgpack)", m, tostring(f)))
  end
  local key = opts.key
  if key ~= nil and type(key) ~= "string" and type(key) ~= "function" then
    fail(format("%s: key must be a field name or a function of the record, got %s", m, type(key)))
    key = nil
  end
  local high = opts.high
  if high ~= nil and (type(high) ~= "number" or high < 1 or high % 1 ~= 0) then
    fail(format("%s: high must be a whole number of messages >= 1, got %s", m, tostring(high)))
    high = nil
  end
  return { type = "kafka", brokers = want_brokers(m, opts), topic = topic, format = f,
    key = key, exactly_once = opts.exactly_once == true, high = high or 100000,
    options = want_properties(m, opts), label = "sink.kafka " .. topic }
end

-- The committed offsets of `group` for the partitions of `offsets` ({ topic = { [p] =
-- offset } }), asked of the brokers: the same shape, or nil and why.
-- transactional_ids: the sinks' (their unfinished transactions complete first).
function kafka.committed(brokers, group, options, offsets, transactional_ids)
  for _, id in ipairs(transactional_ids or {}) do
    local ok, err = core.kafka_committed { brokers = brokers, options = options, group = group,
      offsets = {}, transactional_id = id, timeout = 30000 }
    if not ok then return nil, err end
  end
  return core.kafka_committed { brokers = brokers, group = group, options = options,
    offsets = offsets, timeout = 30000 }
end

-- ---- the source at run time ------------------------------------------------------------------

-- How long a Kafka source counts as failing (/readyz) after librdkafka's last error:
-- longer than the 30 s in which it repeats an error that persists.
local FAILING_S = 35

-- "topic:partition", what a stage keeps a partition's watermark under.
local function partition_id(topic, p) return topic .. ":" .. p end

-- Opens the source of `spec` (ctx as source.open's). ctx.position, from a checkpoint, is
-- { topic = { [partition] = next offset } }: assigned partitions start there.
function kafka.open_source(spec, ctx)
  local positions = {}          -- topic -> partition -> next offset, of what was delivered
  if type(ctx.position) == "table" then
    for t, parts in pairs(ctx.position) do
      positions[t] = {}
      for p, o in pairs(parts) do positions[t][p] = o end
    end
  end
  local consumer, handle, commit_timer
  local done = false
  local failing                 -- the error said last, until messages flow again

  local function copy_positions()
    local copy = {}
    for t, parts in pairs(positions) do
      copy[t] = {}
      for p, o in pairs(parts) do copy[t][p] = o end
    end
    return copy
  end
  -- The end (bounded input, or a shutdown): the end reaches the job while the consumer
  -- still serves (the last checkpoint sends its offsets through it), then it leaves.
  local function finish()
    if done then return end
    done = true
    flow.leave(handle)
    if commit_timer then commit_timer:close(); commit_timer = nil end
    -- (with checkpoints only they commit: a commit of what was read past the last one
    -- would make a restart from it skip those records)
    if not ctx.checkpointing and not ctx.transactional and consumer then
      consumer:commit(positions)
    end
    consumer:stop()
    ctx.ended()
    consumer:close()
  end

  -- with a schema, C decodes each value into slots (the 6th argument of on_batch) and
  -- the batch gets views of them (schema.filler): the records themselves, or with
  -- meta=true the value of each wrapper table C made
  local fill, values
  if spec.schema then fill, values = schema.filler(spec.schema), {} end

  -- where assigned partitions start: a checkpoint's positions, or (--group) where the
  -- state restored for them leaves off (ctx.assigning); else the group's offsets
  local start_at = type(ctx.position) == "table" and ctx.position or {}
  -- on several workers each reads a share of the partitions, fixed for the run (C)
  local share = ctx.shared
  local assigned_here = 0
  consumer = core.kafka_consumer {
    what = spec.label, brokers = spec.brokers, topics = spec.topics, group = spec.group,
    format = spec.format, start = spec.start, meta = spec.meta, bounded = spec.bounded,
    columns = spec.columns, options = spec.options, batch = ctx.batch_size,
    schema = spec.schema and spec.schema.ud,
    offsets = start_at, share_me = share and share.me, share_n = share and share.n,
    on_batch = function(batch, n, topic, p, last, slots)
      if slots then
        if spec.meta then
          fill(values, n, slots)
          for i = 1, n do batch[i].value = values[i] end
        else
          fill(batch, n, slots)
        end
      end
      local parts = positions[topic]
      if not parts then parts = {}; positions[topic] = parts end
      parts[p] = last + 1
      failing = nil
      -- a --group repartition topic's reader takes its control messages out (repartition.lua)
      if spec.filter then n = spec.filter(batch, n, topic, p) end
      if ctx.partition then ctx.partition(partition_id(topic, p), topic, p) end
      if ctx.push(batch, n) then finish() end
    end,
    on_bad = function(info)
      ctx.bad { topic = info.topic, partition = info.partition, offset = info.offset,
        reason = info.reason, raw = info.raw }
    end,
    on_assigning = ctx.assigning and function(list)
      for topic, parts in pairs(ctx.assigning(list) or {}) do
        start_at[topic] = start_at[topic] or {}
        for p, o in pairs(parts) do start_at[topic][p] = o end
      end
    end,
    on_assign = function(list)
      assigned_here = assigned_here + #list
      if ctx.assigned then
        local ids = {}
        for i, tp in ipairs(list) do ids[i] = partition_id(tp.topic, tp.partition) end
        ctx.assigned(ids)
      end
    end,
    on_revoke = function(list)
      for _, tp in ipairs(list) do
        local parts = positions[tp.topic]
        -- the group learns where this member got to before another member takes over
        if parts and parts[tp.partition] and not ctx.checkpointing and not ctx.transactional then
          consumer:commit({ [tp.topic] = { [tp.partition] = parts[tp.partition] } }, true)
        end
      end
      if ctx.revoked then
        local ids = {}
        for i, tp in ipairs(list) do ids[i] = partition_id(tp.topic, tp.partition) end
        ctx.revoked(ids, list)
      end
      -- --group: the member that has the partition now reads on from its last commit;
      -- were it assigned here again, where it starts is asked again then
      if ctx.assigning then
        for _, tp in ipairs(list) do
          if start_at[tp.topic] then start_at[tp.topic][tp.partition] = nil end
          if positions[tp.topic] then positions[tp.topic][tp.partition] = nil end
        end
      end
    end,
    on_error = function(msg, fatal)
      if fatal then error(msg, 0) end
      failing = msg
      report.say("sluice: %s", msg)
    end,
    on_end = finish,
  }
  handle = {
    pause = function() if not done then consumer:stop() end end,
    resume = function() if not done then consumer:start() end end,
    close = finish,
    position = copy_positions,
    consumer = consumer,
    -- --metrics' /readyz: ready once partitions are assigned here and no error stands: the
    -- last one said stands until messages flow, or until librdkafka has not repeated an
    -- error for FAILING_S (brokers back on an idle topic)
    ready = function()
      if failing and not done then
        local age = consumer:error_age()
        if age and age < FAILING_S then return false, failing end
        failing = nil
      end
      if assigned_here == 0 and not done then
        return false, spec.label .. ": no partition assigned yet"
      end
      return true
    end,
    -- --metrics' consumer lag: per partition, the high watermark less what was delivered
    lag = function()
      if done then return {} end
      local list = {}
      for _, w in ipairs(consumer:watermarks()) do
        local at = positions[w.topic] and positions[w.topic][w.partition] or w.position
        if at then
          list[#list + 1] = { topic = w.topic, partition = w.partition,
            lag = math.max(0, w.high - at) }
        end
      end
      return list
    end,
    -- where its offsets are committed: a transactional sink sends them there
    offsets_home = { brokers = spec.brokers, group = spec.group, options = spec.options },
    -- a checkpoint holding `position` is durable: the group hears of it (for lag tools);
    -- with checkpoints, only they commit
    checkpointed = function(position)
      if commit_timer then commit_timer:close(); commit_timer = nil end
      -- with a transactional sink, the offsets went to the group in its transaction
      if not done and position and not ctx.transactional then consumer:commit(position) end
    end,
  }
  if not ctx.checkpointing and not ctx.transactional then
    commit_timer = core.timer(function()
      if not done then consumer:commit(positions) end
    end)
    commit_timer:start(COMMIT_EVERY_MS, COMMIT_EVERY_MS)
  end
  flow.join(handle)
  -- a worker whose share has no partition (fewer partitions than workers) has nothing to
  -- read: its part of the source ends, and holds no watermark back
  if share and assigned_here == 0 then finish() end
  return handle
end

-- ---- the sink at run time ------------------------------------------------------------------

-- Opens the sink of `spec` (ctx as sink.open's: bad_output(record, reason) dead-letters;
-- ctx.checkpointing: the job takes checkpoints, which exactly_once needs).
function kafka.open_sink(spec, ctx)
  local handle = {}
  local blocked, holding, closed = false, false, false
  local pending, pn = {}, 0     -- records not written yet: refused by a full queue, or
                                -- held between a checkpoint's barrier and its commit
  local key_fn = type(spec.key) == "function" and spec.key or nil
  local producer
  local low = math.floor(spec.high / 2)
  local txn = spec.exactly_once
  local options = spec.options
  if txn then
    if not ctx.checkpointing then
      error(spec.label .. ": exactly_once=true needs --state-dir (its transactions commit " ..
        "with the job's checkpoints)", 0)
    end
    options = {}
    for k, v in pairs(spec.options or {}) do options[k] = v end
    options["transactional.id"] = options["transactional.id"] or ("sluice-" .. spec.topic)
  end

  local function block()
    if not blocked then blocked = true; flow.block(handle) end
  end
  local function unblock_when_drained()
    if blocked and not holding and pn == 0 and producer:outq() <= low then
      blocked = false
      flow.unblock(handle)
    end
  end
  local function keys_of(batch, n)
    if not key_fn then return nil end
    local keys = {}
    for i = 1, n do keys[i] = key_fn(batch[i]) end
    return keys
  end
  -- Writes batch[1..n]; what the queue cannot take yet is kept in `pending` (typed
  -- records in their table form: a view lives only as long as its batch). views: which
  -- records C encodes from their slots (sink.lua, typed.split_batch).
  local function write(batch, n, views)
    local bad, stopped = producer:write(batch, n, keys_of(batch, n), views)
    if bad then
      for _, b in ipairs(bad) do ctx.bad_output(plain(batch[b.index]), b.reason) end
    end
    if stopped then
      for i = stopped, n do pn = pn + 1; pending[pn] = plain(batch[i]) end
    end
  end
  local function retry_pending()
    if pn == 0 or holding then return end
    local list, k = pending, pn
    pending, pn = {}, 0
    write(list, k)
  end
  local function check(ok, err)
    if not ok then error(err, 0) end
  end
  -- Writes what waits and delivers everything queued, within FLUSH_MS, or raises.
  local function deliver_all(why)
    local deadline = host.clock() + FLUSH_MS / 1000
    while pn > 0 and host.clock() < deadline do
      retry_pending()
      producer:flush(100)
    end
    local left = producer:flush(math.max(0, math.floor((deadline - host.clock()) * 1000))) + pn
    if left > 0 then
      error(format("%s: %d message%s not delivered within %d s %s", spec.label, left,
        left == 1 and "" or "s", FLUSH_MS / 1000, why), 0)
    end
  end

  producer = core.kafka_producer {
    what = spec.label, brokers = spec.brokers, topic = spec.topic, format = spec.format,
    key_field = type(spec.key) == "string" and spec.key or nil, options = options,
    on_failed = function(list)
      for _, f in ipairs(list) do
        ctx.bad_output(f.value, "not delivered to " .. spec.label .. ": " .. f.reason)
      end
    end,
    on_event = function()
      retry_pending()
      unblock_when_drained()
    end,
    on_error = function(msg, fatal)
      if fatal then error(msg, 0) end
      report.say("sluice: %s", msg)
    end,
  }
  if txn then
    -- fences an earlier producer of the same transactional.id and aborts what it left open
    check(producer:init_transactions(FLUSH_MS))
    check(producer:begin_transaction())
    handle.transactional = options["transactional.id"]
  end

  function handle.push(batch, n, _, views)
    if pn > 0 or holding then
      -- these wait behind what already waits, in order
      for i = 1, n do pn = pn + 1; pending[pn] = plain(batch[i]) end
    else
      write(batch, n, views)
    end
    producer:poll()
    if pn > 0 or producer:outq() > spec.high then block() end
  end

  if txn then
    -- A checkpoint's barrier: what the transaction holds is delivered and the sources'
    -- offsets join it; what comes next waits until the checkpoint is durable (then the
    -- transaction commits and a new one begins) or failed (then it goes on in this one).
    function handle.barrier(positions, sources)
      deliver_all("before a checkpoint")
      local any = false
      for _, src in ipairs(sources) do
        if src.consumer then
          any = true
          local at = positions[src.id]
          if at and next(at) then check(producer:send_offsets(src.consumer, at, FLUSH_MS)) end
        end
      end
      if not any then
        error(spec.label .. ": exactly_once=true needs a Kafka source: its offsets, committed " ..
          "in each transaction, are how a restart knows which transactions committed", 0)
      end
      holding = true
      block()
    end
    function handle.checkpointed()
      if closed then return end
      check(producer:commit_transaction(FLUSH_MS))
      check(producer:begin_transaction())
      holding = false
      retry_pending()
      unblock_when_drained()
    end
    function handle.checkpoint_failed()
      holding = false
      retry_pending()
      unblock_when_drained()
    end
  end

  -- The end of the job: what is queued is delivered (bounded by FLUSH_MS; what is not is
  -- reported and fails the job) and the open transaction commits; after a failure
  -- (`failed`) it is aborted instead, so a restart writes those records once.
  function handle.close(failed)
    if closed then return end
    if blocked then blocked = false; flow.unblock(handle) end
    holding = false
    local ok, err = pcall(deliver_all, "at the end of the job")
    if txn and ok and not failed then
      ok, err = producer:commit_transaction(FLUSH_MS)
    elseif txn then
      producer:abort_transaction(FLUSH_MS)
    end
    closed = true
    producer:close()
    if not ok then error(err, 0) end
  end
  -- --metrics' sink queue: bytes produced and not yet acknowledged, and what waits here
  function handle.queued()
    if closed then return 0 end
    return (producer:queued())
  end
  handle.producer = producer
  handle.encodes_typed = true
  return handle
end

return kafka
