-- changelog.lua -- a keyed operator's state per task in a compacted Kafka topic, for a job
-- scaled out on Kafka (sluice run --group).
--
-- Topic NAME-<operator>-changelog has a partition per input partition. At each commit
-- (group.lua) each task here writes to its partition the keys whose state changed since
-- the last commit: one message per key (key: the state's key, msgpack; value: that key's
-- state, key_state.lua's piece, msgpack), a tombstone for a key whose state is gone, and
-- one message under the key HEADER for what is not per key (the watermark, counters) and
-- the input offset the state goes up to. So
-- what is written is bounded by the keys that changed, not by the records (Kafka
-- Streams' cache of dirty keys), and compaction keeps the topic at one message per key.
--
-- Which keys changed: the task's snapshot is split by key and each key's encoding is
-- compared with the one written last (a hash of it kept here), so a key a window fired,
-- or a timer changed, is written as surely as one a record changed. That costs a walk of
-- the state per commit (as a checkpoint's snapshot does), and 8 bytes a key.
--
-- A member that is assigned a partition reads the changelog partition from its start to
-- its end (read_committed with exactly-once: aborted writes are not state), keeps the
-- last message of each key, and restores the task's operator from them.
local host = require "sluice.host"
local key_state = require "sluice.key_state"

local core = host.core
local encode, decode, hash = core.durable.encode, core.msgpack_decode, core.durable.hash
local format, pairs, ipairs = string.format, pairs, ipairs

local changelog = {}

-- The message key of a task's header: msgpack's nil, which no state key encodes to.
local HEADER = "\192"

-- opts: topic, node (the operator's graph node), op (its keyed_tasks operator), brokers,
-- options (librdkafka properties), read_committed, timeout (ms, restores).
function changelog.new(opts)
  local topic, node, op = opts.topic, opts.node, opts.op
  -- task -> { [encoded key] = hash of its encoded piece, [HEADER] = ... }: a 52-bit hash
  -- rather than the encoding (a rolling count of 1 M keys kept 5 times its state so); a
  -- change the hash misses (2^-52 a compare) leaves that key's last write standing until
  -- it changes again
  local written = {}
  local offsets = {}             -- task -> the input offset its state goes up to
  local cl = {}

  -- The messages that bring task p's partition of the changelog to the task's state now,
  -- appended to `list`; the hashes of what they write are kept for the next commit.
  -- `offset`: where partition p of the input is read up to (the next offset), which the
  -- header keeps with the state: a member restoring it reads on from there, so state and
  -- input agree whatever the group's committed offsets say (at least once, they may lag).
  function cl.changes(p, list, offset)
    local one = op.task_if(p)
    if not one then return list end
    if offset then offsets[p] = offset end
    local header, pieces = key_state.split(node, one.snapshot())
    local was, now = written[p] or {}, {}
    local function put(k, v)
      list[#list + 1] = { topic = topic, partition = p, key = k, value = v }
    end
    for k, piece in pairs(pieces) do
      local ek, ev = encode(k), encode(piece)
      local hv = hash(ev)
      now[ek] = hv
      if was[ek] ~= hv then put(ek, ev) end
    end
    for ek in pairs(was) do
      if now[ek] == nil and ek ~= HEADER then put(ek, nil) end    -- gone: a tombstone
    end
    local eh = encode({ header = header, offset = offsets[p] or false })
    local hh = hash(eh)
    now[HEADER] = hh
    if was[HEADER] ~= hh then put(HEADER, eh) end
    written[p] = now
    return list
  end

  -- Task p was revoked (its changes written before): nothing of it is kept here.
  function cl.forget(p) written[p], offsets[p] = nil, nil end

  -- Restores the tasks of `parts` (partition numbers) from the changelog: each task's
  -- operator is made again from what its partition holds (an empty partition: a fresh
  -- one). Returns { [p] = the input offset the state goes up to } for the tasks whose
  -- changelog says, then how many keys and bytes of changelog it read; or raises with why.
  function cl.restore(parts)
    local got, err = core.kafka_read_partitions { brokers = opts.brokers, options = opts.options,
      topic = topic, partitions = parts, read_committed = opts.read_committed,
      timeout = opts.timeout or 60000 }
    if not got then
      error(format("restoring %s (partitions %s) from changelog topic %s: %s", node.state_id,
        table.concat(parts, ","), topic, tostring(err)), 0)
    end
    local at, keys, bytes = {}, 0, 0
    for _, p in ipairs(parts) do
      local last = {}
      for _, m in ipairs(got[p] or {}) do
        if m.key then
          last[m.key] = m.value or false
          bytes = bytes + #m.key + (m.value and #m.value or 0)
        end
      end
      got[p] = nil                -- (its messages can go before the next partition's)
      local now, pieces, header = {}, {}, nil
      for ek, ev in pairs(last) do
        if ev then
          now[ek] = hash(ev)
          if ek == HEADER then
            local h = decode(ev)
            header = h.header
            if h.offset then offsets[p], at[p] = h.offset, h.offset end
          else
            pieces[decode(ek)] = decode(ev)
            keys = keys + 1
          end
        end
      end
      if header then
        op.restore_task(p, key_state.join(node, header, pieces))
      else
        op.drop(p)
        op.task(p)
      end
      written[p] = now
    end
    return at, keys, bytes
  end

  return cl
end

return changelog
