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

-- The edit distance between strings a and b: insertions, deletions, substitutions and
-- swaps of two neighbouring characters ("fromat" is one edit from "format").
local function distance(a, b)
  local la, lb = #a, #b
  local d = {}
  for i = 0, la do d[i] = { [0] = i } end
  for j = 1, lb do d[0][j] = j end
  for i = 1, la do
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[la][lb]
end
report.distance = distance

-- The name in the array `names` nearest to s, when it is near enough to be what s meant
-- (at most 2 edits, and fewer than half of s's length; or s, of 3 characters or more,
-- begins it); else nil. Ties go to the first.
function report.nearest(s, names)
  if type(s) ~= "string" then return nil end
  s = s:lower()
  local best, best_d = nil, math.huge
  for _, name in ipairs(names) do
    local d = distance(s, name)
    if d < best_d then best, best_d = name, d end
  end
  if best_d <= 2 and best_d * 2 < #s then return best end
  if #s >= 3 then
    for _, name in ipairs(names) do
      if name:sub(1, #s) == s then return name end
    end
  end
  return nil
end

-- Reports each key of opts that is not in the array `names`, at the user's line:
-- "source.file(): unknown option fromat (did you mean format?)", or the list of the
-- options there are when none is near. Unknown keys are reported in sorted order.
function report.check_names(m, opts, names)
  local known, unknown = {}, {}
  for _, name in ipairs(names) do known[name] = true end
  for k in pairs(opts) do
    if not known[k] then unknown[#unknown + 1] = k end
  end
  if #unknown == 0 then return end
  table.sort(unknown, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  for _, k in ipairs(unknown) do
    local shown = type(k) == "string" and k or format("[%s]", tostring(k))
    local near = report.nearest(k, names)
    if near then
      report.fail(format("%s: unknown option %s (did you mean %s?)", m, shown, near))
    elseif #names == 0 then
      report.fail(format("%s: unknown option %s (it takes none)", m, shown))
    else
      report.fail(format("%s: unknown option %s (options: %s)", m, shown, concat(names, ", ")))
    end
  end
end

-- Checks that method m got an options table (nil allowed when `optional`) whose keys are
-- all in the array `names` (when given; see check_names); after a reported mistake returns
-- {} (or the table) so the build goes on and more mistakes can be found.
function report.want_options(m, opts, optional, names)
  if opts == nil and optional then return {} end
  if type(opts) ~= "table" then
    report.fail(format("%s: expected an options table, got %s", m, type(opts)))
    return {}
  end
  if names then report.check_names(m, opts, names) end
  return opts
end

-- opts[field]: a non-empty string, or `default` when absent (a mistake otherwise).
function report.want_string(m, opts, field, default)
  local v = opts[field]
  if v == nil then return default end
  if type(v) ~= "string" or v == "" then
    report.fail(format("%s: %s must be a non-empty string, got %s", m, field, tostring(v)))
    return default
  end
  return v
end

-- opts[field]: a whole number >= 1 of `what` ("bytes", "records"), or `default` when absent.
function report.want_whole(m, opts, field, default, what)
  local v = opts[field]
  if v == nil then return default end
  if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then
    report.fail(format("%s: %s must be a whole number of %s >= 1, got %s", m, field, what,
      tostring(v)))
    return default
  end
  return v
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
