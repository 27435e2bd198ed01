-- busted_output.lua -- busted's plain terminal output, ending in the one summary line the
-- project's tools read: "N passed, M failed" (", K skipped" when any were pending).
-- Errors outside a test (a spec file that fails to load) count as failures.
local output = { result = nil }

return setmetatable(output, { __call = function(_, options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.plainTerminal")(options)
  busted.subscribe({ "suite", "end" }, function()
    local passed = handler.successesCount
    local failed = handler.failuresCount + handler.errorsCount
    local skipped = handler.pendingsCount
    local line = string.format("%d passed, %d failed", passed, failed)
    if skipped > 0 then line = line .. string.format(", %d skipped", skipped) end
    io.write("\n", line, "\n")
    io.flush()
    output.result = { passed = passed, failed = failed, skipped = skipped }
    return nil, true
  end)
  return handler
end })
