-- dead_letters.lua -- where a job's bad records go: input that cannot be decoded, records a
-- user function raised on, output a sink cannot encode.
--
-- One JSON object per record, on stderr unless the script chose a sink with
-- sl.dead_letter(); each says where (source and position, or operator and script line),
-- why, and the record. With on_error "fail" the first one stops the job instead.
local host = require "sluice.host"
local sink = require "sluice.sink"
local plain_deep = require("sluice.typed").plain_deep

local format, tostring = string.format, tostring

local dead_letters = {}

-- --on-error=fail: the dead letter `entry` as the job's error.
function dead_letters.raise(entry)
  local where = entry.line and format("%s:%d", tostring(entry.source), entry.line)
    or entry.at or "?"
  local reason = tostring(entry.reason)
  local what = entry.operator and format(" (in %s at %s)", entry.operator, entry.at or "?")
    or ""
  error((reason:find(where, 1, true) == 1 and reason or (where .. ": " .. reason)) .. what, 0)
end

-- Opens the dead letter output of one run. `spec` is the sink of sl.dead_letter(), or nil
-- for stderr. opts.append: the job resumes from a checkpoint, so a dead letter file is
-- appended to rather than replaced; opts.on_error: "fail" makes write() raise instead;
-- opts.report: without a spec, report(entry, traceback) takes each one in place of
-- stderr (the REPL sums them up). Returns { write(entry [, traceback]), close(),
-- count = records written }; traceback, when the writer has one, is the text of the
-- stack where a user function raised.
function dead_letters.open(spec, opts)
  local dl = { count = 0 }
  local fail = opts.on_error == "fail"
  local out
  if not spec and opts.report then
    local report = opts.report
    function dl.write(entry, traceback)
      if fail then return dead_letters.raise(entry) end
      dl.count = dl.count + 1
      entry.record = plain_deep(entry.record)
      report(entry, traceback)
    end
    dl.close = function() end
    return dl
  end
  if spec then
    out = sink.open(spec, { bad_output = function() end, user_error = function() end,
      append = opts.append })
  else
    local w = host.core.writer { fd = 2, format = "json" }
    out = { push = function(b, n) local bad = w:write(b, n); w:flush(); return bad end,
      close = function() w:close() end }
  end
  function dl.write(entry)
    if fail then return dead_letters.raise(entry) end
    dl.count = dl.count + 1
    entry.record = plain_deep(entry.record)     -- a typed record as its table
    if out.push({ entry }, 1) then
      -- the record itself could not be encoded (a function in it, say): keep its text
      entry.record = tostring(entry.record)
      out.push({ entry }, 1)
    end
  end
  dl.close = out.close
  return dl
end

return dead_letters
