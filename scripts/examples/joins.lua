-- joins.lua -- orders correlated with their payments, and enriched with their users.
-- An order paid within 10 minutes is "paid"; one with no payment in that time goes out
-- once no payment can come any more, as "unpaid" (a left interval join). Each result is
-- enriched with the user's row of users.csv (a table loaded before the records flow).
-- Run: ./sluice run scripts/examples/joins.lua
local sl = require "sluice"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

local orders = sl.source.file { path = here .. "orders.jsonl", format = "json" }:name("orders")
  :timestamp("ts", { out_of_orderness = "1m" }):key_by("order")
local payments = sl.source.file { path = here .. "payments.jsonl", format = "json" }
  :name("payments"):timestamp("ts", { out_of_orderness = "1m" }):key_by("order")
local users = sl.table.file { path = here .. "users.csv", format = "csv", header = true,
  key = "id" }

orders:left_join(payments):between(0, "10m")
  :apply(function(o, p)
    return { order = o.order, user = o.user, amount = o.amount,
      status = p and "paid" or "unpaid", paid_after_s = p and (p.ts - o.ts) / 1000 or nil }
  end):name("settled")
  :key_by("user")
  :lookup(users, function(r, user)
    r.name, r.country = user and user.name, user and user.country
    return r
  end)
  :sink(sl.sink.stdout { format = "json" })
