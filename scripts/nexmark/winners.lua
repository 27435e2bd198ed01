-- winners.lua -- the winning bid of each Nexmark auction, for q4.lua and q9.lua: the
-- highest bid whose time is within the auction's [date_time, expires], the earliest on a
-- tie of price, then the lowest bidder (Flink's ROW_NUMBER orders by price and time only,
-- which leaves a full tie to chance).
--
-- One `process` per auction id over the auctions and bids, in time order: the auction's
-- fields and the best bid in time so far are its state, and a timer at expires + 1 sends
-- the winner once the watermark has passed every bid that could win. A bid can come before
-- its auction in the same ms (host/nexmark.c): the best bid of the latest ms waits for it.
-- Nothing per bid is kept beyond its numbers, so the process takes the typed records as
-- they are (reuse = true); a key's state goes (ctx:clear()) once its winner is out, and
-- that of bids without their auction (it is over) a ttl after them.
-- Winners come in order of expires, then auction id (the timers' order): the input alone
-- fixes it. An auction without a bid in time has no winner, as the query's inner join.

local winners = {}

-- The longest an auction lasts, in ms, for a generator at `rate` events/s with `in_flight`
-- auctions: expires - date_time is drawn from 1 .. 2 * (the time of in_flight * 50 / 3
-- more events) (host/nexmark.c).
function winners.longest(rate, in_flight)
  return 2 * math.ceil(math.floor(in_flight * 50 / 3) * 1000 / rate) + 1
end

-- Whether a bid of (price, time, bidder) beats the state's best.
local function beats(st, price, t, bidder)
  if st.price == nil then return true end
  if price ~= st.price then return price > st.price end
  if t ~= st.t then return t < st.t end
  return bidder < st.bidder
end

-- The stream of winners of the Nexmark events `events` (typed): on_winner(a, st) makes
-- each result from the auction's state a and the best bid (st.price, st.t, st.bidder).
function winners.of(events, rate, in_flight, on_winner)
  return events
    :filter(function(e) return e.type ~= "person" end)
    :timestamp(function(e) return e.type == "bid" and e.bid.date_time or e.auction.date_time end)
    :key_by(function(e) return e.type == "bid" and e.bid.auction or e.auction.id end)
    :process {
      reuse = true,
      on_record = function(ctx, e)
        local st = ctx.state
        if e.type == "auction" then
          local a = e.auction
          st.a = { id = a.id, item_name = a.item_name, description = a.description,
            initial_bid = a.initial_bid, reserve = a.reserve, date_time = a.date_time,
            expires = a.expires, seller = a.seller, category = a.category }
          -- a bid that came first counts if it is of the auction's own ms
          if st.price ~= nil and st.t ~= a.date_time then st.price = nil end
          ctx:timer(a.expires + 1)
          return
        end
        local b, a = e.bid, st.a
        local t = b.date_time
        if a == nil then
          -- before its auction: only the best of the latest ms can still be in time
          if st.price ~= nil and t > st.t then st.price = nil end
        elseif t < a.date_time or t > a.expires then
          return
        end
        if beats(st, b.price, t, b.bidder) then
          st.price, st.t, st.bidder = b.price, t, b.bidder
        end
      end,
      on_timer = function(ctx)
        local st = ctx.state
        if st.a and st.price ~= nil then ctx:emit(on_winner(st.a, st)) end
        ctx:clear()
      end,
    }
    :ttl(winners.longest(rate, in_flight) + 1)
end

return winners
