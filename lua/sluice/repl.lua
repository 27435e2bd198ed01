-- repl.lua -- sluice repl and the client halves of sluice attach, tap and top: reading
-- chunks, evaluating them, printing values, completing names; streaming taps; top's view.
--
-- A chunk that is incomplete continues on the next line, as in the standalone lua. With a
-- terminal on stdin, lines come through GNU readline (core.readline: editing, a history
-- kept in $SLUICE_HISTORY or ~/.sluice_history, Tab completion); without one, from
-- io.read, with no prompts and no escape codes, so a pipe can drive it. End of input ends
-- the session with status 0 (piped: 1 if a chunk failed). control.lua evaluates attached
-- clients' chunks with the same repl.compile, repl.results and repl.complete.
local host = require "sluice.host"
local format = require "sluice.format"
local stream = require "sluice.stream"
local runtime = require "sluice.runtime"
local sl = require "sluice"
local help = require "sluice.help"

local core = host.core
local type, select, tostring, concat, sort = type, select, tostring, table.concat, table.sort

local repl = {}

local CHUNKNAME = "@stdin"     -- "@" so errors read "stdin:1: ..." and point at the user

-- ---- evaluating ----------------------------------------------------------------------

-- Compiles src in env, as an expression when it is one (its values are then printed),
-- else as a statement. Returns the function; or false when src is an incomplete chunk
-- that more lines may finish; or nil and the message of a syntax error.
function repl.compile(src, env)
  src = src:gsub("^%s*=", "return ", 1)             -- "=x" as in the lua 5.1 REPL
  -- select(1, ...) returns every value, and keeps the call in src from being a tail
  -- call, which would lose the line of an error it raises
  local fn = load("return select(1, " .. src .. "\n)", CHUNKNAME, "t", env)
  if fn then return fn end
  local err
  fn, err = load(src, CHUNKNAME, "t", env)
  if fn then return fn end
  if err:find("<eof>", 1, true) then return false end
  return nil, err
end

-- The text an evaluation prints for the values fn returned: one line per value, tables
-- pretty-printed; a string alone is printed as it is (so `:graph()` reads as a picture).
function repl.results(n, ...)
  if n == 0 then return nil end
  local first = ...
  if n == 1 and type(first) == "string" then return first end
  local parts = {}
  for i = 1, n do parts[i] = format.pretty((select(i, ...))) end
  return concat(parts, "\t")
end

-- An error object as the line the user sees: no traceback through the REPL.
function repl.error_text(e)
  if type(e) == "string" then return e end
  return "error: " .. format.pretty(e)
end

local function handler(e) return e end

local function pack(...) return select("#", ...), { ... } end

-- Runs the compiled chunk fn. Returns true and the text of its values (or nil), or false
-- and the error text.
function repl.run(fn)
  local n, r = pack(xpcall(fn, handler))
  if not r[1] then return false, repl.error_text(r[2]) end
  return true, repl.results(n - 1, unpack(r, 2, n))
end

-- ---- completing ----------------------------------------------------------------------

local keywords = { "and", "break", "do", "else", "elseif", "end", "false", "for",
  "function", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true",
  "until", "while" }

-- Adds to `names` the fields of v a name typed after v. or v: may complete: its keys, and
-- those of the tables its metatables' __index lead to (a stream's methods).
local function fields(v, names, methods_only)
  local depth = 0
  while v ~= nil and depth < 5 do
    if type(v) == "table" then
      for k, x in pairs(v) do
        if type(k) == "string" and k:match("^[%a_][%w_]*$")
          and (not methods_only or type(x) == "function") then
          names[k] = true
        end
      end
    end
    local mt = getmetatable(v)
    local index = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(index) ~= "table" then break end
    v = index
    depth = depth + 1
  end
end

-- Looks up a dotted path such as "sl.source" in env, without calling anything but
-- __index. Returns the value or nil.
local function resolve(env, path)
  local v = env
  for name in path:gmatch("[^.:]+") do
    if not name:match("^[%a_][%w_]*$") or (type(v) ~= "table" and type(v) ~= "string") then
      return nil
    end
    local ok, x = pcall(function() return v[name] end)
    if not ok then return nil end
    v = x
  end
  return v
end

-- The words that may replace `word` (the text before the cursor back to the last space or
-- bracket): global names, fields after ".", methods after ":". After a ":" that follows
-- something that is not a plain name (`values{1}:ma`), the stream methods.
function repl.complete(env, word)
  local base, sep, part = word:match("^(.-)([.:])([%w_]*)$")
  local names, prefix = {}, ""
  if not base then
    if not word:match("^[%a_][%w_]*$") then return {} end
    part = word
    fields(env, names)
    for _, k in ipairs(keywords) do names[k] = true end
  else
    prefix = base .. sep
    local v = base ~= "" and resolve(env, base) or nil
    if v == nil and sep == ":" then v = stream.Stream end
    if v == nil then return {} end
    fields(v, names, sep == ":")
  end
  local out = {}
  for k in pairs(names) do
    if k:sub(1, #part) == part and (k:sub(1, 1) ~= "_" or part:sub(1, 1) == "_")
      and not (sep and k:match("^__")) then
      out[#out + 1] = prefix .. k
    end
  end
  sort(out)
  return out
end

-- ---- the loop ------------------------------------------------------------------------

local function history_path()
  local p = os.getenv("SLUICE_HISTORY")
  if p and p ~= "" then return p end
  local home = os.getenv("HOME")
  return home and (home .. "/.sluice_history") or nil
end

-- Reads chunks and hands each complete one to session.eval(src), which prints what it
-- must. session.incomplete(src) tells whether src needs more lines; session.complete
-- (word, line) gives Tab's words; session.banner is printed on a terminal; the optional
-- session.over() ends the loop when true (an attached job went away). When
-- session.eval returns false (the chunk failed) or the input ends inside a chunk, a piped
-- session (no terminal) returns 1, so what drives it sees its errors; else 0.
function repl.loop(session)
  local tty = host.isatty(0) and core.readline ~= nil
  local history = tty and history_path()
  if tty then
    if history then core.history_load(history) end
    core.completer(function(word, line) return session.complete(word, line) end)
    io.stdout:write(session.banner, "\n")
  end
  local pending, failed
  while true do
    local line
    if tty then
      line = core.readline(pending and ">> " or session.prompt)
      if line == false then                          -- Ctrl-C: drop the chunk
        pending = nil
        line = ""
      end
    else
      line = io.stdin:read("*l")
    end
    if line == nil then break end
    pending = pending and (pending .. "\n" .. line) or line
    if session.incomplete(pending) then
      -- wait for the rest of the chunk
    else
      if tty and pending:find("%S") then
        core.history_add(pending)
        if history then core.history_save(history, 1000) end
      end
      local src = pending
      pending = nil
      if src:find("%S") and session.eval(src) == false then failed = true end
      io.stdout:flush()
      if session.over and session.over() then break end
    end
  end
  if pending and pending:find("%S") then                 -- the chunk input left unfinished
    local _, err = load(pending, CHUNKNAME)
    io.stderr:write(err or "stdin: incomplete chunk at end of input", "\n")
    failed = true
  end
  if tty then
    core.completer(nil)
    io.stdout:write("\n")
  end
  return (failed and not tty) and 1 or 0
end

local function is_incomplete(src)
  return repl.compile(src, {}) == false
end

-- ---- dead letters, summed up --------------------------------------------------------
--
-- At the REPL, a :show() over a file with bad lines would print them as JSON at every
-- :show(), and a function that raises on every record one line per record. A chunk's
-- dead letters are summed up instead (unless sl.dead_letter() chose a sink): the first
-- with where it came from and its traceback, then how many more.

-- The frames of a traceback that are the user's: up to the first frame in sluice itself
-- (a stage's generated loop, lua/sluice/), without the C functions above them. The
-- function a stage calls is named by its operator (the loop's local for it is "fN").
local function user_frames(tb, operator)
  local out = {}
  for line in tostring(tb or ""):gmatch("[^\n]+") do
    local frame = line:match("^%s+(.*)$")
    if frame then
      if frame:find("sluice stage %d") or frame:find("sluice/[%w_]+%.lua:") then break end
      if operator then
        frame = frame:gsub("in function 'f%d+'$", "in the function given to " .. operator)
      end
      if not (frame:find("^%[C%]") and #out == 0) then out[#out + 1] = "  " .. frame end
    end
  end
  return out
end

-- Where a dead letter came from, for people.
local function dead_letter_origin(e)
  if e.line and e.source then
    return string.format("from %s line %d (byte %d)", tostring(e.source), e.line, e.offset or 0)
  elseif e.sink then
    return string.format("in %s at %s", tostring(e.sink), tostring(e.at or "?"))
  elseif e.operator then
    return string.format("in %s%s at %s", tostring(e.operator),
      e.name and string.format(" %q", e.name) or "", tostring(e.at or "?"))
  end
  return string.format("in %s at %s", tostring(e.source or "?"), tostring(e.at or "?"))
end

-- A collector of one chunk's dead letters: report(entry, traceback) for each; text() is
-- what to print after the chunk (nil when there was none).
local function dead_letter_summary()
  local first, first_tb, count = nil, nil, 0
  local summary = {}
  function summary.report(entry, tb)
    count = count + 1
    if not first then first, first_tb = entry, tb end
  end
  function summary.text()
    if count == 0 then return nil end
    local lines = { "dead letter: " .. tostring(first.reason), "  " .. dead_letter_origin(first) }
    if first.record ~= nil then
      local ok, r = pcall(format.pretty, first.record)
      lines[#lines + 1] = "  record: " .. format.abbreviate(ok and r:gsub("\n%s*", " ") or
        tostring(first.record), 200)
    end
    local frames = user_frames(first_tb, first.operator)
    if #frames > 0 then
      lines[#lines + 1] = "  stack traceback:"
      for _, f in ipairs(frames) do lines[#lines + 1] = "  " .. f end
    end
    if count > 1 then
      lines[#lines + 1] = string.format("(and %d more dead letter%s: %d records in all; " ..
        "sl.dead_letter(sink) keeps every one)", count - 1, count == 2 and "" or "s", count)
    end
    return concat(lines, "\n")
  end
  return summary
end

-- ---- sluice repl ---------------------------------------------------------------------

-- Runs the script in env, and adds its top-level locals (read as the main chunk returns)
-- to env, so `local s = ...` in the script is `s` at the prompt. Returns true or false.
local function load_script(path, env)
  local chunk, err = loadfile(path)
  if not chunk then
    io.stderr:write(io.open(path, "r") and err or (path .. ": cannot open the script"), "\n")
    return false
  end
  setfenv(chunk, env)
  local locals
  debug.sethook(function()
    local info = debug.getinfo(2, "f")
    if info and info.func == chunk and not locals then
      locals = {}
      for i = 1, 250 do
        local name, value = debug.getlocal(2, i)
        if name == nil then break end
        if not name:find("^%(") then locals[name] = value end
      end
    end
  end, "r")
  local ok, rerr = xpcall(chunk, handler)
  debug.sethook()
  if not ok then
    io.stderr:write(repl.error_text(rerr), "\n")
    return false
  end
  for name, value in pairs(locals or {}) do
    if rawget(env, name) == nil then rawset(env, name, value) end
  end
  return true
end

-- Ctrl-C while a chunk runs: a running job (`:collect()` of an endless source) is asked
-- to stop, from the loop, as SIGTERM would, and the records so far are its result (a
-- second Ctrl-C stops its sources at once); any other code stops with the error
-- "interrupted". Called from a hook; returns whether it dealt with the interrupt.
local function on_interrupt()
  local job = runtime.running()
  if not job then return false end
  local timer
  timer = core.timer(function()
    timer:close()
    io.stderr:write("interrupted: the job stops\n")
    job:shutdown()
  end)
  timer:start(0)
  return true
end

function repl.main(script)
  local env = setmetatable({ sl = sl, help = help.fn }, { __index = _G })
  if script and not load_script(script, env) then return 2 end
  return repl.loop {
    banner = "sluice " .. host.version .. " -- `sl` is the module" ..
      (script and ("; " .. script .. " is loaded") or "") ..
      "; help() helps; Tab completes; Ctrl-D exits",
    prompt = "sl> ",
    incomplete = is_incomplete,
    complete = function(word) return repl.complete(env, word) end,
    eval = function(src)
      local fn, err = repl.compile(src, env)
      if not fn then io.stderr:write(err, "\n"); return false end
      -- Ctrl-C stops code through a hook, and LuaJIT runs no hook inside a compiled
      -- trace (a loop that never leaves its trace would never stop): what is typed here,
      -- and every function it defines, runs in the interpreter. sluice's own loops (a
      -- :collect()'s stages and windows) stay compiled and end each batch.
      jit.off(fn, true)
      io.stdout:flush()
      local dead = dead_letter_summary()
      runtime.defaults.dead_letter_report = dead.report
      if core.interrupts then core.interrupts(true, on_interrupt) end
      local ok, text = repl.run(fn)
      if core.interrupts then core.interrupts(false) end
      runtime.defaults.dead_letter_report = nil
      io.stdout:flush()
      local summary = dead.text()
      if summary then io.stderr:write(summary, "\n"); io.stderr:flush() end
      if ok and text then io.stdout:write(text, "\n") end
      if not ok then io.stdout:flush(); io.stderr:write(text, "\n") end
      return ok
    end,
  }
end

-- ---- sluice attach -------------------------------------------------------------------

-- A REPL whose chunks are evaluated inside the job at the other end of `client` (a
-- core.ctl_connect client). Returns 0, or 1 when the connection fails.
function repl.attach(client, path)
  local encode, decode = core.msgpack_encode, core.msgpack_decode
  local next_id, lost = 0, false
  -- Sends one request and hands every reply frame for it to on_frame, until the one
  -- marked done, which it returns; nil when the job went away. A first Ctrl-C while it
  -- waits asks the job to end the command (a tap), a second one detaches.
  local function request(msg, on_frame)
    next_id = next_id + 1
    msg.id = next_id
    local ok, err = client:send(encode(msg))
    local cancelled = false
    while ok do
      local body
      body, err = client:recv(200)
      if body then
        local frame = decode(body)
        if frame.id == msg.id then
          if on_frame then on_frame(frame) end
          if frame.done then return frame end
        end
      elseif err ~= "timeout" then
        break
      elseif core.interrupted() then
        if cancelled then err = "interrupted"; break end
        cancelled = true
        next_id = next_id + 1
        ok, err = client:send(encode({ op = "cancel", id = next_id, target = msg.id }))
      end
    end
    if not lost then io.stderr:write("sluice: the job has gone away (", tostring(err), ")\n") end
    lost = true
    return nil
  end
  local function show(frame)
    if frame.out then io.stdout:write(frame.out, "\n"); io.stdout:flush() end
    if frame.err then io.stderr:write(frame.err, "\n") end
  end
  local status = 0
  core.interrupts(true)
  local hello = request({ op = "hello" })
  if not hello then core.interrupts(false); return 1 end
  local code = repl.loop {
    banner = "sluice attach -- " .. tostring(hello.job or path) .. " (pid " ..
      tostring(hello.pid) .. "); `job` is the running job; Ctrl-D detaches",
    prompt = "job> ",
    incomplete = is_incomplete,
    complete = function(word, line)
      local frame = request({ op = "complete", word = word, line = line })
      return frame and frame.words or {}
    end,
    over = function() return lost end,
    eval = function(src)
      core.interrupted()                            -- a Ctrl-C before this is spent
      if not request({ op = "eval", src = src }, show) then status = 1 end
    end,
  }
  core.interrupts(false)
  client:close()
  return lost and status or code
end

-- ---- sluice tap ----------------------------------------------------------------------

-- Streams the records `pattern` names (a name, #id or glob; control.lua's tap op) from the
-- job at the other end of `client` to stdout, one per line (fmt "json": JSON lines),
-- until Ctrl-C or the job's end. Returns 0, or 1 when the job refuses the pattern.
function repl.tap(client, pattern, fmt)
  local encode, decode = core.msgpack_encode, core.msgpack_decode
  core.interrupts(true)
  local ok = client:send(encode({ op = "tap", id = 1, pattern = pattern, format = fmt }))
  local status = 0
  while ok do
    if core.interrupted() then
      client:send(encode({ op = "cancel", id = 2, target = 1 }))
      break
    end
    local body, err = client:recv(200)
    if body then
      local frame = decode(body)
      if frame.err then
        io.stderr:write("sluice: ", tostring(frame.err), "\n")
        status = 1
        break
      end
      if frame.tapping and host.isatty(2) then
        io.stderr:write("sluice tap: ", concat(frame.tapping, ", "), " (Ctrl-C stops)\n")
      end
      -- a reader that went away (`| head`) ends the tap as Ctrl-C does
      if frame.out and not (io.stdout:write(frame.out, "\n") and io.stdout:flush()) then
        break
      end
      if frame.done then break end
    elseif err ~= "timeout" then
      io.stderr:write("sluice: the job has gone away (", tostring(err), ")\n")
      break
    end
  end
  core.interrupts(false)
  client:close()
  return status
end

-- ---- sluice top ----------------------------------------------------------------------

-- The columns top shows first, when the metrics have them, with their headers; any
-- others follow, sorted, under their own names. `watermark` itself is left out: its lag
-- says more; so is `partition_lag` (a list: consumer_lag is its total).
local TOP_COLUMNS = {
  { "id" }, { "name" }, { "operator" }, { "kind" },
  { "records_in", "in" }, { "records_out", "out" }, { "rate_in", "in/s" },
  { "rate_out", "out/s" }, { "errors" }, { "dead_letters", "dead" }, { "late" }, { "keys" },
  { "bytes" }, { "watermark_lag", "wm lag" }, { "lag_ms" }, { "queue_fill" },
}
local TOP_HIDDEN = { watermark = true, partition_lag = true }
-- columns of bytes, shown as B/KiB/MiB
local BYTE_COLUMNS = { bytes = true, queued_bytes = true, rss = true, heap = true }

-- job:metrics() as rows of text for format.table: an array of per-operator tables as it
-- is, a table keyed by operator name as rows with a `name` column; numbers as whole
-- numbers, bytes as KiB/MiB. Returns the rows, their columns (headers) and the set of
-- columns to align to the right.
function repl.metrics_rows(m)
  local rows = {}
  if type(m) ~= "table" then return rows, { "value" }, {} end
  local raw = {}
  if #m > 0 then
    for i, r in ipairs(m) do raw[i] = r end
  else
    local names = {}
    for k in pairs(m) do names[#names + 1] = k end
    sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(names) do
      local r = {}
      if type(m[k]) == "table" then for f, v in pairs(m[k]) do r[f] = v end
      else r.value = m[k] end
      if r.name == nil then r.name = k end
      raw[#raw + 1] = r
    end
  end
  local present, cols, known, header = {}, {}, {}, {}
  for _, r in ipairs(raw) do
    if type(r) == "table" then for k in pairs(r) do present[k] = true end end
  end
  for _, c in ipairs(TOP_COLUMNS) do
    known[c[1]] = true
    header[c[1]] = c[2] or c[1]
    if present[c[1]] then cols[#cols + 1] = c[1] end
  end
  local rest = {}
  for k in pairs(present) do
    if not known[k] and not TOP_HIDDEN[k] then rest[#rest + 1] = k end
  end
  sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do cols[#cols + 1] = k; header[k] = tostring(k) end
  local right, shown = {}, {}
  for i, r in ipairs(raw) do
    local out = {}
    for _, c in ipairs(cols) do
      local v = type(r) == "table" and r[c] or nil
      if type(v) == "number" then
        right[header[c]] = true
        if BYTE_COLUMNS[c] then v = format.bytes(v)
        elseif v % 1 ~= 0 then v = string.format("%.1f", v) end
      end
      out[header[c]] = v
    end
    rows[i] = out
  end
  for i, c in ipairs(cols) do shown[i] = header[c] end
  return rows, shown, right
end

-- A live view of job:metrics() over `client`, redrawn every second until q, Ctrl-C or
-- the job's end; the terminal is restored on every way out. Without a terminal it
-- prints the metrics once. Returns the exit status.
function repl.top(client, path)
  local encode, decode = core.msgpack_encode, core.msgpack_decode
  local id = 0
  local function fetch()
    id = id + 1
    local ok, err = client:send(encode({ op = "metrics", id = id }))
    while ok do
      local body
      body, err = client:recv()
      if not body then break end
      local frame = decode(body)
      if frame.id == id and frame.done then return frame end
    end
    return nil, "the job has gone away (" .. tostring(err) .. ")"
  end
  local function render(frame, width)
    if frame.err then return frame.err end
    local rows, cols, right = repl.metrics_rows(frame.metrics)
    if #rows == 0 then return "(no metrics)" end
    return format.table(rows, { columns = cols, width = width, right = right })
  end
  local tty = host.isatty(0) and host.isatty(1)
  if not tty then
    local frame, err = fetch()
    client:close()
    if not frame then io.stderr:write("sluice: ", err, "\n"); return 1 end
    io.stdout:write(render(frame), "\n")
    return frame.err and 1 or 0
  end
  local raw, rerr = core.term_raw(true)
  if not raw then io.stderr:write("sluice: ", rerr, "\n"); return 1 end
  io.stdout:write("\27[?1049h\27[?25l")                 -- the alternate screen, no cursor
  local ok, err = pcall(function()
    while true do
      local frame, ferr = fetch()
      if not frame then return ferr end
      local width = core.term_width(1) or 80
      io.stdout:write("\27[H\27[2J", format.abbreviate(string.format(
        "sluice top -- %s -- %s -- q quits", path, os.date("%H:%M:%S")), width), "\n\n",
        render(frame, width), "\n")
      io.stdout:flush()
      local key = core.read_key(1000)
      if key and (key == "" or key:find("[qQ\3]")) then return nil end
    end
  end)
  core.term_raw(false)
  io.stdout:write("\27[?25h\27[?1049l")
  io.stdout:flush()
  client:close()
  if not ok or err then
    io.stderr:write("sluice: ", tostring(err), "\n")
    return 1
  end
  return 0
end

return repl
