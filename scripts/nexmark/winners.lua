-- winners.lua -- the winning bid of each Nexmark auction, for q4.lua and q9.lua: the
-- highest bid whose time is within the auction's [date_time, expires], the earliest on a
-- tie of price, then the lowest bidder (Flink's ROW_NUMBER orders by price and time only,
-- which leaves a full tie to chance).
--
-- One `process` per auction id over the auctions and bids, in time order: the auction's
-- fields and the best bid in time so far are its state, and a timer at expires + 1 sends
-- the winner once the watermark has passed every bid that could win. A bid can come before
-- its auction in the same ms (host/nexmark.c), and on several workers (--workers N) any
-- bid may come before its auction: the bids before it wait for it in the key's state.
-- Nothing per bid is kept beyond its numbers, so the process takes the typed records as
-- they are (reuse = true); a key's state goes (ctx:clear()) once its winner is out, and
-- that of bids without their auction (it is over) as long after the first of them as an
-- auction can last.
-- Winners come in order of expires, then auction id (the timers' order): the input alone
-- fixes it. An auction without a bid in time has no winner, as the query's inner join.

local sl = require "sluice"

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

-- The stream of winners of the Nexmark events the environment asks for (EVENTS, default
-- 10 M; SEED; RATE, events/s of event time, default 10000; AUCTIONS in flight, default 100),
-- typed: on_winner(a, st) makes each result from the auction's state a and the best bid
-- (st.price, st.t, st.bidder).
function winners.of(on_winner)
  local rate = tonumber(os.getenv("RATE")) or 10000
  local in_flight = tonumber(os.getenv("AUCTIONS")) or 100
  local events = sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
    seed = tonumber(os.getenv("SEED")) or 0, rate = rate, auctions = in_flight, typed = true }
  local longest = winners.longest(rate, in_flight) + 1
  return events
    :filter(function(e) return e.type ~= "person" end)
    :timestamp(function(e)
      local b = e.bid
      if b then return b.date_time end
      return e.auction.date_time
    end)
    :key_by(function(e)
      local b = e.bid
      if b then return b.auction end
      return e.auction.id
    end)
    :process {
      reuse = true,
      on_record = function(ctx, e)
        local st = ctx.state
        local b = e.bid
        if b == nil then
          local a = e.auction
          st.a = { id = a.id, item_name = a.item_name, description = a.description,
            initial_bid = a.initial_bid, reserve = a.reserve, date_time = a.date_time,
            expires = a.expires, seller = a.seller, category = a.category }
          -- the bids that came first count if they are in its time
          local early = st.early
          st.early = nil
          for i = 1, early and #early or 0, 3 do
            local price, t, bidder = early[i], early[i + 1], early[i + 2]
            if t >= a.date_time and t <= a.expires and beats(st, price, t, bidder) then
              st.price, st.t, st.bidder = price, t, bidder
            end
          end
          ctx:timer(a.expires + 1)
          return
        end
        local a = st.a
        local t = b.date_time
        if a == nil then
          -- before its auction, which may come later (in the same ms; on several workers,
          -- from one behind this bid's): kept until it does; and the key goes if none
          -- comes (the bids name one that is over) by the time any could
          local early = st.early or {}
          early[#early + 1], early[#early + 2], early[#early + 3] = b.price, t, b.bidder
          st.early = early
          if not st.orphan then
            st.orphan = true
            ctx:timer(t + longest)
          end
          return
        elseif t < a.date_time or t > a.expires then
          return
        end
        if beats(st, b.price, t, b.bidder) then
          st.price, st.t, st.bidder = b.price, t, b.bidder
        end
      end,
      on_timer = function(ctx, t)
        local st = ctx.state
        local a = st.a
        if a == nil then
          ctx:clear()
        elseif t == a.expires + 1 then
          if st.price ~= nil then ctx:emit(on_winner(a, st)) end
          ctx:clear()
        end
      end,
    }
end

return winners
