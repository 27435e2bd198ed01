-- wrk script (wrk runs it in its own LuaJIT): each request POSTs one body of LINES JSON
-- lines of about 80 bytes (the bids of make_json.lua), on keep-alive connections; done()
-- prints the requests that were not answered 200, which must be none.
-- luacheck: globals wrk response done
local lines = tonumber(os.getenv("LINES") or 1000)
local channels = { "web", "ios", "android", "partner" }
local t = {}
for i = 1, lines do
  t[i] = string.format('{"auction":%d,"bidder":%d,"price":%.2f,"channel":"%s","ts":%d}',
    1000 + i % 10007, 5000 + i % 7919, (i * 37 % 20000) / 100, channels[i % 4 + 1],
    1700000000000 + i * 3)
end
wrk.method = "POST"
wrk.body = table.concat(t, "\n") .. "\n"
wrk.headers["Content-Type"] = "application/x-ndjson"

local refused = 0
function response(status)
  if status ~= 200 then refused = refused + 1 end
end

function done(summary)
  io.write(string.format("requests %d refused %d\n", summary.requests, refused))
end
