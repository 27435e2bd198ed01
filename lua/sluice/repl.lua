-- repl.lua -- sluice repl: interactive Lua with the module bound to `sl`.
--
-- Reads chunks line by line (an incomplete chunk continues on the next line, as in the
-- standalone lua), evaluates expressions and prints their values. Without a terminal it
-- prints no prompts, so it can be driven by a pipe.
local host = require "sluice.host"
local format = require "sluice.format"

local repl = {}

local function print_values(n, ...)
  for i = 1, n do
    local v = select(i, ...)
    io.stdout:write(format.pretty(v), "\n")
  end
end

-- Evaluates one chunk of input in env. Returns false when the chunk is incomplete.
local function eval(src, env)
  local fn, err = load("return " .. src, "=stdin", "t", env)
  if not fn then
    fn, err = load(src, "=stdin", "t", env)
  end
  if not fn then
    if err:find("<eof>", 1, true) then return false end
    io.stderr:write(err, "\n")
    return true
  end
  local results = { xpcall(fn, function(e) return e end) }
  if results[1] then
    print_values(#results - 1, unpack(results, 2, table.maxn(results)))
  else
    io.stderr:write(tostring(results[2]), "\n")
  end
  return true
end

function repl.main(script)
  local sl = require "sluice"
  local env = setmetatable({ sl = sl }, { __index = _G })
  if script then
    local chunk, err = loadfile(script)
    if not chunk then io.stderr:write(err, "\n"); return 2 end
    setfenv(chunk, env)
    local ok, rerr = pcall(chunk)
    if not ok then io.stderr:write(tostring(rerr), "\n"); return 2 end
  end
  local tty = host.isatty(0)
  if tty then io.stdout:write("sluice ", host.version, " -- `sl` is the module; Ctrl-D exits\n") end
  local pending = nil
  while true do
    if tty then io.stdout:write(pending and ">> " or "sl> "); io.stdout:flush() end
    local line = io.stdin:read("*l")
    if not line then break end
    pending = pending and (pending .. "\n" .. line) or line
    if eval(pending, env) then pending = nil end
  end
  if tty then io.stdout:write("\n") end
  return 0
end

return repl
