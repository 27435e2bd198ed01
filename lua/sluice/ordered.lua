-- ordered.lua -- the workers' streams into one keyed operator, put back into one worker's
-- order (sluice run --workers N, after a second key_by).
--
-- Where every source upstream is read by worker 1, worker 1 numbers each record as it
-- crosses into a keyed operator (exchange.lua's numbered points): with one worker, the
-- operators downstream would see the records in that order. What a keyed operator puts out
-- while it takes record L carries L as its label; a watermark that worker 1 passes on gets
-- a number too. Records bound for a second keyed operator come from every worker, so its
-- receiving side holds them here, one queue per sending worker, and hands them on in the
-- order of their labels (ties: the lower worker first, as outputs of one watermark fire).
-- A worker's labels never go down, and each tells the others how far it has got (progress:
-- it has sent everything labelled up to f); a record goes on once every other worker has
-- either something labelled later waiting here or told it is past its label.
local huge = math.huge

local ordered = {}

-- A merge of n senders into the inputs of a stage.merge: input_of(i) is sender i's input
-- there; set_label(L) is called before each record or watermark goes on, with its label.
-- `batched`: nothing downstream needs each record's label (no ordered point follows), so
-- records of one sender that go on one after another go in one batch (set_label then gets
-- the last one's).
function ordered.new(n, input_of, set_label, batched)
  local queues, told = {}, {}
  for i = 1, n do
    -- kind[j]: "r" a record (rec, t, w), "e" a watermark (w), "x" the end of input
    queues[i] = { first = 1, last = 0, label = {}, kind = {}, rec = {}, t = {}, w = {} }
    told[i] = 0
  end
  local one, one_t, one_w, none = {}, {}, {}, {}
  local merge = { held = 0 }    -- records and watermarks waiting here

  local function put(q, label, kind, r, t, w)
    local j = q.last + 1
    q.last = j
    q.label[j], q.kind[j], q.rec[j], q.t[j], q.w[j] = label, kind, r, t, w
    if kind ~= "x" then merge.held = merge.held + 1 end
  end

  -- (batched: the records going on, all sender batch_from's)
  local batch_from, bn, bb, bt, bw = nil, 0, {}, {}, {}
  local function flush_batch()
    if bn == 0 then return end
    local k = bn
    bn = 0
    input_of(batch_from):push(bb, k, bt, bw, nil)
  end

  local function hand_on(i)
    local q = queues[i]
    local j = q.first
    local kind = q.kind[j]
    set_label(q.label[j])
    local r, t, w = q.rec[j], q.t[j], q.w[j]
    q.label[j], q.kind[j], q.rec[j], q.t[j], q.w[j] = nil, nil, nil, nil, nil
    q.first = j + 1
    -- (an emptied queue starts again at 1: its indices stay in the arrays' array parts)
    if q.first > q.last then q.first, q.last = 1, 0 end
    if kind ~= "x" then merge.held = merge.held - 1 end
    if batched and kind == "r" then
      if batch_from ~= i then flush_batch(); batch_from = i end
      bn = bn + 1
      bb[bn], bt[bn], bw[bn] = r, t, w
      return
    end
    flush_batch()
    local input = input_of(i)
    if kind == "r" then
      one[1], one_t[1], one_w[1] = r, t, w
      input:push(one, 1, one_t, one_w, nil)
    elseif kind == "e" then
      input:push(none, 0, none, none, w)
    else
      told[i] = huge
      input:finish()
    end
  end

  -- Hands on what may go: the smallest label waiting, while every sender with nothing
  -- waiting is past it (or, sending after it on a tie, at least past the label before).
  -- An end goes as soon as its sender's records before it have gone: it orders nothing.
  local releasing = false
  local function release()
    if releasing then return end
    releasing = true
    while true do
      local best, label = nil, nil
      for i = 1, n do
        local q = queues[i]
        if q.first <= q.last then
          if q.kind[q.first] == "x" then
            hand_on(i)
          else
            local l = q.label[q.first]
            if not best or l < label then best, label = i, l end
          end
        end
      end
      if not best then break end
      for k = 1, n do
        local q = queues[k]
        if k ~= best and q.first > q.last and told[k] < (k < best and label or label - 1) then
          best = nil
          break
        end
      end
      if not best then break end
      hand_on(best)
    end
    flush_batch()
    releasing = false
  end

  -- Sender i's batch: records b[1..n] (with times t and watermarks w when given) labelled
  -- labels[k] (or all `label` when labels is nil), then the watermark wend labelled
  -- `label`. marks, when given, lists the indices k (ascending) that are no records but
  -- watermarks passed on (w[k]). b's arrays may be used again: the records are copied out.
  function merge.push(i, b, cnt, t, w, wend, labels, label, marks)
    local q = queues[i]
    local mark, m = marks and marks[1], 1
    for k = 1, cnt do
      local l = labels and labels[k] or label
      if k == mark then
        put(q, l, "e", nil, nil, w[k])
        m = m + 1
        mark = marks[m]
      else
        put(q, l, "r", b[k], t and t[k], w and w[k])
      end
    end
    if wend then put(q, label, "e", nil, nil, wend) end
    release()
  end

  -- Sender i has sent everything labelled up to f.
  function merge.progress(i, f)
    if f > told[i] then told[i] = f end
    release()
  end

  function merge.finish(i)
    put(queues[i], huge, "x")
    release()
  end

  -- Idleness holds no record back: it goes on at once.
  function merge.idle(i) input_of(i):idle() end

  -- How far every sender is known to have got: what this merge has handed on is complete
  -- up to there.
  function merge.frontier()
    local f = huge
    for i = 1, n do if told[i] < f then f = told[i] end end
    return f
  end

  -- Hands on everything held, in label order as far as it is known (at a checkpoint's cut,
  -- where nothing should be held: a record is never kept back from a snapshot). Ends stay
  -- until their senders' records have gone, as always.
  function merge.drain()
    while merge.held > 0 do
      local best, label = nil, nil
      for i = 1, n do
        local q = queues[i]
        if q.first <= q.last and q.kind[q.first] ~= "x" then
          local l = q.label[q.first]
          if not best or l < label then best, label = i, l end
        end
      end
      if not best then break end
      hand_on(best)
    end
    release()
  end

  return merge
end

return ordered
