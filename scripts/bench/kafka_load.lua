-- Writes the lines of IN (JSON bids) as messages of topic TOPIC at BROKERS: the input of
-- the Kafka benchmark (scripts/bench/kafka.sh), written with sluice's own Kafka sink.
local sl = require "sluice"

sl.source.file { path = os.getenv("IN"), format = "lines" }
  :sink(sl.sink.kafka { brokers = os.getenv("BROKERS"), topic = os.getenv("TOPIC"),
    format = "lines" })
