-- plan.lua -- from graph to stages: fusing chains of stateless operators into one loop.
--
-- A stage is a maximal chain of stateless operators (map, filter, flat_map, peek, take,
-- key_by, timestamp, and a partition or a name()d operator that ends it) where each
-- operator feeds only the next. The
-- planner writes one Lua function per stage -- a plain numeric loop over a batch with the
-- user's functions as upvalues -- and `load`s it, so LuaJIT traces the whole chain, user
-- code included. C and Lua meet once per batch, never once per record.
local graph = require "sluice.graph"

local format, concat = string.format, table.concat

local plan = {}

-- Operators a stage can hold. A partition ends its stage (it has two outputs).
local fusable = { map = true, filter = true, flat_map = true, peek = true, take = true,
  key_by = true, timestamp = true, partition = true }
plan.fusable = fusable

local function consumers_in(node, set)
  local list = {}
  for _, c in ipairs(node.consumers) do
    if set[c.node] then list[#list + 1] = c end
  end
  return list
end
plan.consumers_in = consumers_in

-- Groups the fusable nodes of `set` into stages; sets node.stage to the stage number.
-- Returns the array of stages, each { id = k, ops = {node, ...} }. `starts(node)`, when
-- given, says that node begins a stage of its own (a take() gathered on one worker).
function plan.assign_stages(set, starts)
  local stages = {}
  for _, node in ipairs(graph.ordered(set)) do
    node.stage = nil
    if fusable[node.kind] then
      local up = #node.inputs == 1 and node.inputs[1].node
      local stage
      -- a named operator ends its stage, so its output exists for taps and metrics
      if up and up.stage and up.kind ~= "partition" and not up.name
        and #consumers_in(up, set) == 1 and not (starts and starts(node)) then
        stage = stages[up.stage]
        stage.ops[#stage.ops + 1] = node
      else
        stage = { id = #stages + 1, ops = { node } }
        stages[stage.id] = stage
      end
      node.stage = stage.id
    end
  end
  return stages
end

-- Whether the records leaving `node` carry event time: from a timestamp op on, through
-- stateless operators, unions and joins whose inputs all have it, and keyed operators.
function plan.timed(node, memo)
  memo = memo or {}
  if memo[node] ~= nil then return memo[node] end
  local kind, timed = node.kind, false
  if kind == "timestamp" then
    timed = true
  elseif kind == "source" then
    timed = false
  elseif kind == "union" or kind == "join" then
    timed = true
    for _, input in ipairs(node.inputs) do
      if not plan.timed(input.node, memo) then timed = false end
    end
  elseif #node.inputs > 0 then
    timed = plan.timed(node.inputs[1].node, memo)
  end
  memo[node] = timed
  return timed
end

-- Writes the Lua source of a stage's loop. `ops` is an array of { kind =, fn =, n =, ...}.
-- Returns the source and a map from source line to the index of the op on that line
-- (so an error can be traced to its operator; index 0 is a fused generator).
--
-- `opts.generator`: the stage also holds its source, a generator: records are made by
-- fns.gen(i) inside the loop instead of read from a batch, so nothing is stored twice.
-- `opts.keep`: what goes into an out batch is fns.keep(r), the form of r the source wants
-- stored (typed views: a pointer made once, where r would be a new cdata).
-- `opts.timed_in`: the input batches carry event times and watermarks (arrays t, w);
-- `opts.timed_out`: so do the outputs (the input is timed, or a timestamp op makes it so).
-- `opts.partitioned`: each input batch comes from one partition of a source (Kafka), and
-- the stage's first timestamp op keeps its watermark over partitions (see `partitions`).
--
-- The chunk, called with (fns, emit1, emit2, on_take_done, bad_value), returns
--   run(inb, s, n, int, inw)  processes records s..n, appending outputs to its out batches;
--   flush(wend)      hands the out batches (with wend, the watermark after them) to
--                    emit1/emit2 and empties them;
--   cursor()         the index of the record being processed (valid after an error);
--   state(new)       the stage's own state (take counts, timestamp watermarks), replaced
--                    by `new` when given: for snapshots;
--   watermark()      the watermark of the stage's last timestamp op, or nil;
--   partitions       with opts.partitioned and a timestamp op: { max(v), raise(v), ooo } for
--                    stage.lua, which keeps each partition's largest event time: max(v)
--                    sets the largest time seen in the partition whose batch comes next
--                    (max() reads it after the batch); raise(v) moves the watermark to
--                    v - out_of_orderness if that is later, v being the smallest of the
--                    partitions' largest times. Within a batch the watermark stays where
--                    it was, so a record is never late because another partition is ahead.
-- The loop index is kept in an upvalue so that, when a user function raises, the caller
-- knows which record failed and resumes at the next one: no record re-run, none lost.
function plan.codegen(ops, opts)
  opts = opts or {}
  local timed_in, timed_out = opts.timed_in, opts.timed_out
  local src, line_op = {}, {}
  local depth = 2
  local function emit(s, op_index)
    src[#src + 1] = string.rep("  ", depth) .. s
    if op_index then line_op[#src] = op_index end
  end
  local function raw(s) src[#src + 1] = s end

  local state_names, last_ts, part_ts = {}, nil, nil
  raw("local fns, emit1, emit2, on_take_done, bad_value = ...")
  raw("local type = type")
  for k, op in ipairs(ops) do
    if op.fn then raw(format("local f%d = fns[%d]", k, k)) end
    if op.kind == "take" then
      raw(format("local lim%d, tk%d = %d, 0", k, k, op.n))
      state_names[#state_names + 1] = "tk" .. k
    elseif op.kind == "timestamp" then
      raw(format("local ooo%d, wm%d = %.17g, -math.huge", k, k, op.ooo or 0))
      state_names[#state_names + 1] = "wm" .. k
      last_ts = k
      if opts.partitioned and not part_ts then
        part_ts = k
        raw(format("local pm%d = -math.huge", k))
      end
    end
  end
  raw("local out1, m1, out2, m2 = {}, 0, {}, 0")
  raw("local ot1, ow1, ot2, ow2 = {}, {}, {}, {}")
  raw("local cur = 0")
  raw("local gen, keep = fns.gen, fns.keep")
  raw("local function run(inb, s, n, int, inw)")
  raw("  for i = s, n do")
  raw("    cur = i")
  local closers = 0
  if opts.generator then
    emit("local r = gen(i)", 0)
    emit("if r ~= nil then"); depth = depth + 1; closers = closers + 1
  else
    raw("    local r = inb[i]")
  end
  if timed_in then raw("    local t, w = int[i], inw[i]")
  elseif timed_out then raw("    local t, w") end

  local stored = opts.keep and "keep(r)" or "r"
  local function put(port)
    if timed_out then
      return format("m%d = m%d + 1; out%d[m%d] = %s; ot%d[m%d] = t; ow%d[m%d] = w",
        port, port, port, port, stored, port, port, port, port)
    end
    return format("m%d = m%d + 1; out%d[m%d] = %s", port, port, port, port, stored)
  end

  local ended = false
  for k, op in ipairs(ops) do
    local kind = op.kind
    if kind == "map" then
      emit(format("r = f%d(r)", k), k)
      emit("if r ~= nil then", k); depth = depth + 1; closers = closers + 1
    elseif kind == "filter" then
      emit(format("if f%d(r) then", k), k); depth = depth + 1; closers = closers + 1
    elseif kind == "peek" then
      emit(format("f%d(r)", k), k)
    elseif kind == "key_by" then
      -- a pass-through here: keyed operators read the key themselves
    elseif kind == "timestamp" then
      if op.field then
        emit(format("local tv = r[%q]", op.field), k)
      else
        emit(format("local tv = f%d(r)", k), k)
      end
      emit(format("if type(tv) ~= 'number' or tv ~= tv then bad_value(%d, tv) end", k), k)
      if k == part_ts then
        emit(format("if tv > pm%d then pm%d = tv end", k, k), k)
      else
        emit(format("if tv - ooo%d > wm%d then wm%d = tv - ooo%d end", k, k, k, k), k)
      end
      emit(format("t = tv; w = wm%d", k), k)
    elseif kind == "flat_map" then
      emit(format("local a%d = f%d(r)", k, k), k)
      emit(format("if a%d ~= nil then", k), k); depth = depth + 1
      emit(format("if type(a%d) ~= 'table' then bad_value(%d, a%d) end", k, k, k), k)
      emit(format("for j%d = 1, #a%d do", k, k), k); depth = depth + 1
      emit(format("local r = a%d[j%d]", k, k), k)
      closers = closers + 2
    elseif kind == "take" then
      emit(format("if tk%d < lim%d then", k, k), k); depth = depth + 1; closers = closers + 1
      emit(format("tk%d = tk%d + 1", k, k), k)
      emit(format("if tk%d == lim%d then on_take_done(%d) end", k, k, k), k)
    elseif kind == "partition" then
      emit(format("if f%d(r) then %s", k, put(1)), k)
      emit(format("else %s end", put(2)), k)
      ended = true
    else
      error("plan.codegen: cannot fuse operator " .. tostring(kind))
    end
  end
  if not ended then emit(put(1)) end
  for _ = 1, closers do depth = depth - 1; emit("end") end
  raw("  end")
  raw("end")
  raw("local function flush(wend)")
  if timed_out then
    raw("  if m1 > 0 or wend then local k = m1; m1 = 0; emit1(out1, k, ot1, ow1, wend) end")
    raw("  if m2 > 0 or wend then local k = m2; m2 = 0; emit2(out2, k, ot2, ow2, wend) end")
  else
    raw("  if m1 > 0 then local k = m1; m1 = 0; emit1(out1, k) end")
    raw("  if m2 > 0 then local k = m2; m2 = 0; emit2(out2, k) end")
  end
  raw("end")
  raw("local function cursor() return cur end")
  local names = table.concat(state_names, ", ")
  if #state_names > 0 then
    raw("local function state(new)")
    raw(format("  if new then %s = unpack(new) end", names))
    raw(format("  return { %s }", names))
    raw("end")
  else
    raw("local function state() return {} end")
  end
  raw(format("local function watermark() return %s end", last_ts and ("wm" .. last_ts) or "nil"))
  if part_ts then
    local k = part_ts
    raw(format("local partitions = { ooo = ooo%d, max = function(v) if v ~= nil then pm%d = v end " ..
      "return pm%d end,", k, k, k))
    raw(format("  raise = function(v) if v - ooo%d > wm%d then wm%d = v - ooo%d end end }",
      k, k, k, k))
  else
    raw("local partitions = nil")
  end
  raw("return run, flush, cursor, state, watermark, partitions")
  return concat(src, "\n"), line_op
end

return plan
