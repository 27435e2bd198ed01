-- http.lua -- sl.source.http: records POSTed to the job, one per line of a body.
--
-- The listener, the HTTP parsing and the decoding of a body into batches are C's
-- (host/http_server.c, host/http_request.c); a request is answered only after its records
-- were pushed into the job, so a 200 means they are in. This module checks the options at
-- the user's line, and at run time ties the listener to the job: batches to ctx.push, bad
-- lines and bad requests to the dead letters, back-pressure (flow.lua) to 503 replies, and
-- a shutdown to a drain that answers the requests in flight before the source ends.
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local schema = require "sluice.schema"

local core = host.core
local type, format, tostring = type, string.format, tostring
local fail = report.fail

local http = {}

local formats = { lines = true, json = true, csv = true, msgpack = true }

local MAX_BODY = 16 * 1024 * 1024       -- default longest body, in bytes
local MAX_BODY_LIMIT = 1024 * 1024 * 1024

-- ---- declarations ------------------------------------------------------------------------

-- A schema (sl.schema): each body's records are typed, decoded by C into slots (json or
-- msgpack: a body has no csv header to name the columns): the rule schema.want applies.
local function schema_fits(_, opts)
  local f = opts.format or "json"
  if f ~= "json" and f ~= "msgpack" then
    return format("schema needs format json or msgpack (got %s)", f)
  end
  return nil
end

-- http{listen="host:port", path="/", format="json", max_body=16 MiB, schema}: one record
-- per line (msgpack: per object) of each POST body. Returns the source's spec.
function http.source_spec(opts)
  local m = "source.http()"
  opts = report.want_options(m, opts, false, { "listen", "path", "format", "max_body",
    "schema" })
  local listen = opts.listen
  if type(listen) ~= "string" or not listen:match(".:%d+$") then
    fail(format('%s: listen is required (a string "host:port"), got %s', m, tostring(listen)))
    listen = "?"
  end
  local path = opts.path or "/"
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[%s?#]") then
    fail(format('%s: path must be a string starting with "/" (no spaces, "?" or "#"), got %s',
      m, tostring(path)))
    path = "/"
  end
  local f = opts.format or "json"
  if not formats[f] then
    fail(format("%s: unknown format %q (lines, json, csv, msgpack)", m, tostring(f)))
    f = "json"
  end
  local max_body = opts.max_body or MAX_BODY
  if type(max_body) ~= "number" or max_body < 1 or max_body % 1 ~= 0
    or max_body > MAX_BODY_LIMIT then
    fail(format("%s: max_body must be a whole number of bytes from 1 to 2^30, got %s", m,
      tostring(opts.max_body)))
    max_body = MAX_BODY
  end
  return { type = "http", listen = listen, url_path = path, format = f, max_body = max_body,
    schema = schema.want(m, opts, schema_fits), label = "source.http " .. listen .. path }
end

-- ---- the source at run time --------------------------------------------------------------

-- Opens the source of `spec` (ctx as source.open's). close() the first time drains: no new
-- connection, each request in flight is answered (its records pushed first), then the
-- source ends; a second close() ends it at once and says how many connections it cut.
function http.open_source(spec, ctx)
  local server, handle
  local done, draining = false, false
  local function finish()
    if done then return end
    done = true
    flow.leave(handle)
    server:close()
    ctx.ended()
  end
  -- with a schema, C decodes each body's records into slots, put into the batch as views
  -- (schema.filler), valid until the request is answered, which is after the push
  local fill
  if spec.schema then fill = schema.filler(spec.schema) end
  server = core.http_listen {
    what = "http " .. spec.listen, address = spec.listen, path = spec.url_path,
    format = spec.format, max_body = spec.max_body, batch = ctx.batch_size,
    shared = ctx.shared ~= nil, schema = spec.schema and spec.schema.ud,
    on_batch = function(batch, n, slots)
      if slots then fill(batch, n, slots) end
      if ctx.push(batch, n) then finish() end
    end,
    on_bad = ctx.bad,
    on_end = finish,
  }
  handle = {
    pause = function() if not done then server:pause() end end,
    resume = function() if not done then server:resume() end end,
    close = function()
      if done then return end
      if draining then
        local cut = server:connections()
        if cut > 0 and ctx.lost then
          ctx.lost(format("%d connection%s with a request in flight closed unanswered", cut,
            cut == 1 and "" or "s"))
        end
        return finish()
      end
      draining = true
      server:drain()
    end,
  }
  flow.join(handle)
  return handle
end

return http
