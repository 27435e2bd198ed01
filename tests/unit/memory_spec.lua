-- Specs for lua/sluice/memory.lua's sizes: `--memory-limit SIZE` counts K, M, G and T in
-- 1024s, with or without B or iB, and says what it expected when SIZE is not one.
local memory = require "sluice.memory"

describe("memory.parse", function()
  it("reads sizes in 1024s", function()
    assert.are.equal(200 * 2 ^ 20, memory.parse("200MB"))
    assert.are.equal(200 * 2 ^ 20, memory.parse("200M"))
    assert.are.equal(200 * 2 ^ 20, memory.parse("200 MiB"))
    assert.are.equal(2 * 2 ^ 30, memory.parse("2gb"))
    assert.are.equal(1536 * 2 ^ 20, memory.parse("1.5G"))
    assert.are.equal(512 * 1024, memory.parse("512k"))
    assert.are.equal(4096, memory.parse("4096"))
    assert.are.equal(4096, memory.parse("4096B"))
  end)

  it("says what it expected otherwise", function()
    for _, bad in ipairs({ "", "lots", "-5MB", "0", "10 XB", "MB" }) do
      local n, err = memory.parse(bad)
      assert.is_nil(n, bad)
      assert.are.equal("expected a size such as 200MB, 2GB or a number of bytes, got " .. bad, err)
    end
  end)

  it("writes sizes in MiB", function()
    assert.are.equal("200 MiB", memory.text(200 * 2 ^ 20))
    assert.are.equal("200.5 MiB", memory.text(200.5 * 2 ^ 20))
  end)
end)
