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
-- there; `box`.label is set before each record or watermark goes on, to its label (and
-- back to what it was once they have: the merge may hand on within an operator's batch).
-- `batched`: nothing downstream needs each record's label (no ordered point follows), so
-- the records that go on together go in one batch, through push_mixed(b, k, t, w, from)
-- (stage.merge's: from[j], record j's sender); box.label then is the last one's.
function ordered.new(n, input_of, box, batched, push_mixed)
  local queues, told = {}, {}
  for i = 1, n do
    -- kind[j]: "r" a record (rec, t, w), "e" a watermark (w), "x" the end of input
    queues[i] = { first = 1, last = 0, label = {}, kind = {}, rec = {}, t = {}, w = {} }
    told[i] = 0
  end
  local merge = { held = 0 }    -- records and watermarks waiting here

  local function put(q, label, kind, r, t, w)
    local j = q.last + 1
    q.last = j
    q.label[j], q.kind[j], q.rec[j], q.t[j], q.w[j] = label, kind, r, t, w
    if kind ~= "x" then merge.held = merge.held + 1 end
  end

  -- What goes on, picked first (a loop that calls nothing, so that LuaJIT compiles it)
  -- and handed on after: out_from[j] the sender, out_kind, out_rec, out_t, out_w,
  -- out_label; j = 1..nout.
  local out_from, out_kind, out_rec, out_t, out_w, out_label = {}, {}, {}, {}, {}, {}
  local nout = 0

  -- Takes the items at the head of sender i's queue whose labels are at most `limit` (all
  -- of them for limit = huge), stopping at its end ("x", taken last).
  local function take(i, limit)
    local q = queues[i]
    local first, last = q.first, q.last
    local label, kind, rec, qt, qw = q.label, q.kind, q.rec, q.t, q.w
    local j = first
    while j <= last do
      local kd = kind[j]
      if kd ~= "x" and label[j] > limit then break end
      nout = nout + 1
      out_from[nout], out_kind[nout], out_rec[nout] = i, kd, rec[j]
      out_t[nout], out_w[nout], out_label[nout] = qt[j], qw[j], label[j]
      label[j], kind[j], rec[j], qt[j], qw[j] = nil, nil, nil, nil, nil
      j = j + 1
      if kd == "x" then told[i] = huge; break end
      merge.held = merge.held - 1
    end
    -- (an emptied queue starts again at 1: its indices stay in the arrays' array parts)
    if j > last then q.first, q.last = 1, 0 else q.first = j end
  end

  -- Picks what may go: the sender with the smallest label waiting (ties: the lower), and
  -- of its queue what is labelled no later than every other sender allows: one with
  -- records waiting, less than its first label (or up to it, if it sends after on a tie);
  -- one with nothing waiting, up to where it said it is (or one past, if it sends after).
  -- An end goes as soon as its sender's records before it have gone: it orders nothing.
  local function pick(drain)
    while true do
      local best, label = nil, nil
      for i = 1, n do
        local q = queues[i]
        if q.first <= q.last then
          if q.kind[q.first] == "x" then take(i, -huge)
          else
            local l = q.label[q.first]
            if not best or l < label then best, label = i, l end
          end
        end
      end
      if not best then return end
      local limit = huge
      for k = 1, n do
        if k ~= best then
          local q = queues[k]
          local lk
          if q.first <= q.last then lk = q.label[q.first] - (k < best and 1 or 0)
          elseif drain then lk = huge
          else lk = told[k] + (k > best and 1 or 0) end
          if lk < limit then limit = lk end
        end
      end
      if label > limit then return end
      take(best, limit)
    end
  end

  -- Hands on what pick took, in order: in batched mode the records between two watermarks
  -- or ends as one batch, whatever their senders (push_mixed).
  local none = {}
  local bb, bt, bw, bf = {}, {}, {}, {}
  local function hand_on()
    local j = 1
    while j <= nout do
      local kind = out_kind[j]
      box.label = out_label[j]
      if kind == "r" and batched then
        local k = 0
        while j <= nout and out_kind[j] == "r" do
          k = k + 1
          bb[k], bt[k], bw[k], bf[k] = out_rec[j], out_t[j], out_w[j], out_from[j]
          box.label = out_label[j]
          j = j + 1
        end
        push_mixed(bb, k, bt, bw, bf)
      else
        local input = input_of(out_from[j])
        if kind == "r" then
          bb[1], bt[1], bw[1] = out_rec[j], out_t[j], out_w[j]
          input:push(bb, 1, bt, bw, nil)
        elseif kind == "e" then
          input:push(none, 0, none, none, out_w[j])
        else
          input:finish()
        end
        j = j + 1
      end
    end
    for k = 1, nout do out_rec[k] = nil end
    nout = 0
  end

  local releasing = false
  local function release(drain)
    if releasing then return end
    releasing = true
    local outer = box.label
    pick(drain)
    hand_on()
    box.label = outer
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
  -- where nothing should be held: a record is never kept back from a snapshot).
  function merge.drain() release(true) end

  return merge
end

return ordered
