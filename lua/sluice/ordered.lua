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
-- it has sent everything labelled up to f); a record goes on once every worker has told
-- it is past its label, or has sent something labelled later.
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

  -- What goes on, picked first (loops that call nothing, so that LuaJIT compiles them)
  -- and handed on after: out.from[j] the sender, .kind, .rec, .t, .w, .label; j = 1..nout.
  -- (spare: the arrays a merge of two runs writes into, then swapped with out)
  local function columns() return { from = {}, kind = {}, rec = {}, t = {}, w = {}, label = {} } end
  local out, spare = columns(), columns()
  local nout, spare_used = 0, 0

  -- Picks what may go: every record and watermark labelled up to T, the label every
  -- sender is known to be past (it said so, or it has sent something labelled after),
  -- merged by label (ties: the lower sender first; each sender's in its order); then the
  -- ends whose senders' records have all gone. `drain`: everything held, T unbounded.
  local function pick(drain)
    local T = huge
    if not drain then
      for k = 1, n do
        local q = queues[k]
        local b = told[k]
        if q.first <= q.last then
          if q.kind[q.last] == "x" then b = huge
          elseif q.label[q.last] - 1 > b then b = q.label[q.last] - 1 end
        end
        if b < T then T = b end
      end
    end
    nout = 0
    for i = 1, n do
      local q = queues[i]
      local first, last = q.first, q.last
      local label, kind, rec, qt, qw = q.label, q.kind, q.rec, q.t, q.w
      local e = first
      while e <= last and kind[e] ~= "x" and label[e] <= T do e = e + 1 end
      if e > first then
        -- out (the senders before i, merged) and i's run, merged into spare
        local o, sp = out, spare
        local of, ok, orr, ot, ow, ol = o.from, o.kind, o.rec, o.t, o.w, o.label
        local sf, sk, sr, st, sw, sl = sp.from, sp.kind, sp.rec, sp.t, sp.w, sp.label
        local a, b, k = 1, first, 0
        while a <= nout or b < e do
          k = k + 1
          if b >= e or (a <= nout and ol[a] <= label[b]) then
            sf[k], sk[k], sr[k], st[k], sw[k], sl[k] = of[a], ok[a], orr[a], ot[a], ow[a], ol[a]
            a = a + 1
          else
            sf[k], sk[k], sr[k], st[k], sw[k], sl[k] = i, kind[b], rec[b], qt[b], qw[b], label[b]
            label[b], kind[b], rec[b], qt[b], qw[b] = nil, nil, nil, nil, nil
            b = b + 1
          end
        end
        merge.held = merge.held - (e - first)
        out, spare = sp, o
        if k > spare_used then spare_used = k end
        nout = k
        -- (an emptied queue starts again at 1: its indices stay in the arrays' array parts)
        if e > last then q.first, q.last = 1, 0 else q.first = e end
      end
    end
    for i = 1, n do
      local q = queues[i]
      if q.first <= q.last and q.kind[q.first] == "x" then
        q.kind[q.first] = nil
        q.first, q.last = 1, 0
        told[i] = huge
        nout = nout + 1
        out.from[nout], out.kind[nout], out.rec[nout], out.label[nout] = i, "x", nil, huge
      end
    end
  end

  -- Hands on what pick took, in order (batched: the records between two watermarks or
  -- ends as one batch).
  local none = {}
  local bb, bt, bw, bf = {}, {}, {}, {}
  local function hand_on()
    local from, kinds, recs, ts, ws, labs = out.from, out.kind, out.rec, out.t, out.w, out.label
    local j = 1
    while j <= nout do
      local i, kind = from[j], kinds[j]
      box.label = labs[j]
      if kind == "r" and batched then
        local k = 0
        while j <= nout and kinds[j] == "r" do
          k = k + 1
          bb[k], bt[k], bw[k], bf[k] = recs[j], ts[j], ws[j], from[j]
          box.label = labs[j]
          j = j + 1
        end
        push_mixed(bb, k, bt, bw, bf)
      elseif kind == "r" then
        bb[1], bt[1], bw[1] = recs[j], ts[j], ws[j]
        j = j + 1
        input_of(i):push(bb, 1, bt, bw, nil)
      elseif kind == "e" then
        input_of(i):push(none, 0, none, none, ws[j])
        j = j + 1
      else
        input_of(i):finish()
        j = j + 1
      end
    end
    -- (no record is kept alive here once it has gone on)
    for k = 1, nout do recs[k] = nil end
    for k = 1, spare_used do spare.rec[k] = nil end
    spare_used = 0
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
    local ql, qk, qr, qt, qw = q.label, q.kind, q.rec, q.t, q.w
    local j = q.last
    -- (one loop per case, with nothing to decide per record: these run for every record)
    if labels and t then
      for k = 1, cnt do
        ql[j + k], qk[j + k], qr[j + k], qt[j + k], qw[j + k] = labels[k], "r", b[k], t[k], w[k]
      end
    elseif labels then
      for k = 1, cnt do ql[j + k], qk[j + k], qr[j + k] = labels[k], "r", b[k] end
    elseif t then
      for k = 1, cnt do
        ql[j + k], qk[j + k], qr[j + k], qt[j + k], qw[j + k] = label, "r", b[k], t[k], w[k]
      end
    else
      for k = 1, cnt do ql[j + k], qk[j + k], qr[j + k] = label, "r", b[k] end
    end
    q.last = j + cnt
    merge.held = merge.held + cnt
    -- the watermarks passed on among them
    if marks then
      for m = 1, #marks do
        local k = j + marks[m]
        qk[k], qr[k], qt[k] = "e", nil, nil
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
