-- report.lua -- pointing at the user's line.
--
-- Builder calls remember where in the user's script they were made (report.where), and
-- misuse is reported as "script.lua:LINE: message". While a script is being compiled for
-- `sluice run`/`check`, mistakes are collected so that every one is reported; elsewhere
-- (REPL, specs) they are raised at once.
local host = require "sluice.host"

local getinfo, concat, format = debug.getinfo, table.concat, string.format

local report = {}

local lib_prefix = "@" .. host.libdir .. "/sluice/"
local collected = nil          -- array of messages while collecting, else nil

-- Says one line on stderr: how sluice tells a person what it did or why it failed (not a
-- record of output, not a script mistake being collected).
function report.say(fmt, ...) io.stderr:write(format(fmt, ...), "\n") end

-- Is this stack frame part of sluice itself (or C), rather than the user's code?
local function is_library(info)
  local src = info.source
  return info.what == "C" or src:sub(1, #lib_prefix) == lib_prefix or src:sub(1, 1) == "="
end

-- "script.lua:LINE" of the innermost frame outside the library, or "?" when there is none.
function report.where()
  for level = 2, 50 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if not is_library(info) then
      local src = info.source
      src = src:sub(1, 1) == "@" and src:sub(2) or info.short_src
      return format("%s:%d", src, info.currentline)
    end
  end
  return "?"
end

-- Reports a mistake at `at` (default: the user's current line). Raises, unless mistakes
-- are being collected, in which case it records the message and returns.
function report.fail(msg, at)
  local full = (at or report.where()) .. ": " .. msg
  if collected then
    collected[#collected + 1] = full
    return
  end
  error(full, 0)
end

-- Starts collecting mistakes instead of raising them.
function report.collect() collected = {} end

-- Stops collecting; returns the array of messages collected.
function report.collected()
  local list = collected or {}
  collected = nil
  return list
end

function report.join(list) return concat(list, "\n") end

-- Checks that method m got an options table (nil allowed when `optional`); after a
-- reported mistake returns {} so the build goes on and more mistakes can be found.
function report.want_options(m, opts, optional)
  if opts == nil and optional then return {} end
  if type(opts) ~= "table" then
    report.fail(format("%s: expected an options table, got %s", m, type(opts)))
    return {}
  end
  return opts
end

-- Checks opts.format (default "lines") against `known` (a set); `names` lists them.
function report.want_format(m, opts, known, names)
  local f = opts.format or "lines"
  if not known[f] then
    report.fail(format("%s: unknown format %q (%s)", m, tostring(f), names))
  end
  return f
end

return report
