-- repartition.lua -- a key_by under --group whose key is not the input's message key: its
-- records go through the internal topic NAME-<operator>-repartition, keyed by the new key,
-- and the keyed operators after it read that topic (group.lua rewrites the graph so).
--
-- The writer (a sink at the key_by's place) sends each record to partition
-- key group % partitions of the topic, so a key's records meet in one partition, as a
-- message { record, event time } (msgpack). It also says, for each input partition it
-- holds, that partition's watermark, in a control message { false, partition, watermark }
-- to every partition of the topic, every WM_EVERY_MS. The reader (the topic read as a
-- Kafka source of the group) drops the control messages from its batches and keeps, per
-- partition it reads, the last watermark each input partition said: the partition's
-- watermark is the smallest of them (an input partition that has said none holds it at
-- -inf). So event time crosses the topic, and windows after it are exact: a record a
-- writer sends after saying w has a time of at least w, unless it was late already.
--
-- A writer's watermark for input partition p is the time its records can no longer be
-- behind: the partition's own clock (tasks.lua) when only stateless operators lie
-- between the input and the key_by; with keyed operators between, the watermark of their
-- task p (their results can come as late as that).
local host = require "sluice.host"
local exchange = require "sluice.exchange"
local tasks = require "sluice.tasks"
local typed = require "sluice.typed"
local keyed = require "sluice.keyed"
local report = require "sluice.report"

local core = host.core
local encode = core.durable.encode
local format, ipairs, pairs, type, huge = string.format, ipairs, pairs, type, math.huge

local repartition = {}

local WM_EVERY_MS = 100         -- how often a writer says its watermarks
local SAY_AGAIN_MS = 1000       -- ... and says them again unchanged (a reader that took a
                                -- partition over learns them so)

-- The partition of `topic` (n partitions) that key k goes to.
function repartition.partition_of(k, n)
  local g = exchange.group_of(k)
  if g == nil then return nil end
  return g % n
end

-- The writer's sink handle. spec: topic, partitions (of the topic, as many as the
-- input's), input (its topic), key_field or key_fn, upstream (array of keyed_tasks
-- operators between the input and the key_by), produce(list) (the group's), held() (the
-- input partitions this member holds: { [p] = true }), timed.
function repartition.writer(spec, ctx)
  local n, topic = spec.partitions, spec.topic
  local key_of = keyed.key_of { key_field = spec.key_field, key_fn = spec.key_fn }
  local said, said_at = {}, {}        -- p -> watermark said; p -> when (clock)
  local handle = { label = spec.label }

  function handle.push(batch, count, t)
    local list = {}
    for i = 1, count do
      local r = typed.plain(batch[i])
      local ok, k = pcall(key_of, r)
      local q = ok and repartition.partition_of(k, n)
      if not ok then
        ctx.bad_output(r, k)
      elseif q == nil then
        ctx.bad_output(r, format("key_by: a key of type %s cannot be repartitioned", type(k)))
      else
        local ti = t and t[i]
        list[#list + 1] = { topic = topic, partition = q, key = encode(k),
          value = encode({ r, ti or false }), timestamp = ti and ti >= 0 and ti < 2 ^ 53
            and math.floor(ti) or nil }
      end
    end
    spec.produce(list)
  end

  -- The watermark of input partition p as far as this writer is concerned (see the top).
  local function watermark_of(p)
    local w = tasks.after(spec.input, p)
    if w == nil then return nil end
    for _, op in ipairs(spec.upstream) do
      local one = op.task_if(p)
      if one and one.wm < w then w = one.wm end
    end
    return w
  end

  local function say_watermarks()
    local now = host.clock()
    local list = {}
    for p in pairs(spec.held()) do
      local w = watermark_of(p)
      if w and w > -huge and (w ~= said[p] or (now - (said_at[p] or 0)) * 1000 >= SAY_AGAIN_MS) then
        said[p], said_at[p] = w, now
        local v = encode({ false, p, w })
        for q = 0, n - 1 do list[#list + 1] = { topic = topic, partition = q, value = v } end
      end
    end
    if #list > 0 then spec.produce(list) end
  end
  -- (a stream without event time has no watermarks to say)
  local timer = spec.timed and core.timer(function()
    local ok, err = pcall(say_watermarks)
    if not ok then report.say("sluice: %s: watermarks: %s", spec.label, tostring(err)) end
  end)
  if timer then timer:start(WM_EVERY_MS, WM_EVERY_MS) end

  function handle.close()
    if timer then timer:close(); timer = nil end
  end
  return handle
end

-- The reader's hooks, for the Kafka source spec of the topic: filter(batch, n, topic, q)
-- drops the control messages (noting the watermarks they say) and unwraps nothing (the
-- map after it does); clock(id) is partition id's watermark. writers: how many
-- partitions the input has (each says its own watermark).
function repartition.reader(writers)
  local said = {}               -- "topic:q" -> { [p] = watermark }
  local hooks = {}
  function hooks.filter(batch, count, topic, q)
    local id = topic .. ":" .. q
    local of = said[id]
    if not of then of = {}; said[id] = of end
    local kept = 0
    for i = 1, count do
      local e = batch[i]
      if type(e) == "table" and e[1] == false then
        local p, w = e[2], e[3]
        if type(p) == "number" and type(w) == "number" and w > (of[p] or -huge) then of[p] = w end
      else
        kept = kept + 1
        batch[kept] = e
      end
    end
    for i = kept + 1, count do batch[i] = nil end
    return kept
  end
  function hooks.clock(id)
    local of = said[id]
    if not of then return -huge end
    local low = huge
    for p = 0, writers - 1 do
      local w = of[p] or -huge
      if w < low then low = w end
    end
    return low
  end
  -- A partition moved away: what its writers said goes with it.
  function hooks.forget(id) said[id] = nil end
  return hooks
end

-- The record and event time of a message the reader kept: { record, time | false }.
function repartition.record_of(e) return e[1] end
function repartition.time_of(e) return e[2] or nil end

return repartition
