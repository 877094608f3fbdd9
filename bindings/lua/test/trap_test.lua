-- A guest trap must not take the host down: the binding raises TRAP,
-- makes a fresh instance with the same options, and the machine works on
-- (empty). Two ways to trap: a tiny module that speaks the ABI and hits
-- `unreachable` on any step over 100 bytes, and the real lastseen.wasm
-- running out of memory under a host memory limit.
local lastseen = require "lastseen"
local C = require "check"
local eq = C.eq

-- The control block at 0: version 3, in 64/1024, out 2048/1024, out_len
-- 20, n_results 1. The result at 2048: OK, one output of kind 9 (a kind
-- this binding does not know), to "x", stanza "y", no data.
local WAT = [[
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\03\00\00\00\40\00\00\00\00\04\00\00\00\08\00\00\00\04\00\00\14\00\00\00\01\00\00\00\00\00\00\00")
  (data (i32.const 2048) "\00\01\00\00\00\09\01\00\00\00x\01\00\00\00y\00\00\00\00")
  (global $steps (mut i32) (i32.const 0))
  (func (export "_initialize"))
  (func (export "lastseen_abi_version") (result i32) (i32.const 3))
  (func (export "lastseen_ctrl") (result i32) (i32.const 0))
  (func (export "lastseen_reserve") (param i32) (result i32) (i32.const 0))
  (func (export "lastseen_step") (param i32) (result i32)
    (if (i32.gt_s (local.get 0) (i32.const 100)) (then unreachable))
    (i32.const 0)))
]]

local function tiny()
  return lastseen.compile(assert(lastseen.wat2wasm(WAT)), true)
end

return {
  { "a trap raises TRAP and the machine restarts", function()
    local m = lastseen.new({ served = { "montague.com" }, wasm = tiny() })
    local first = m._inst
    eq(#m:client(0, "romeo@montague.com/b", "<presence/>"), 1, "outputs before the trap")
    local e = C.raises(m.client, m, 0, "romeo@montague.com/b", "<presence><status>" .. string.rep("x", 200) .. "</status></presence>")
    eq(e.code, "TRAP", "code")
    eq(e.message:match("unreachable") ~= nil, true, "message names the trap: " .. e.message)
    eq(first:live(), false, "the trapped instance is dead")
    eq(m._inst ~= first and m._inst:live(), true, "a fresh instance replaced it")
    eq(#m:client(0, "romeo@montague.com/b", "<presence/>"), 1, "outputs after the trap")
  end },

  { "an unknown output kind keeps its number", function()
    local m = lastseen.new({ served = { "montague.com" }, wasm = tiny() })
    local out = m:client(0, "romeo@montague.com/b", "<presence/>")
    eq({ out[1].kind, out[1].to, out[1].stanza }, { 9, "x", "y" }, "output")
  end },

  { "lastseen.wasm out of memory under a limit traps, and restarts empty", function()
    -- quiet: the guest's "fatal error: out of memory" and goroutine dump
    -- would fill the test's output.
    local quiet = lastseen.compile(nil, false, true)
    local m = lastseen.new({ served = { "montague.com" }, max_memory = 64 << 20, max_bytes = 1 << 30, wasm = quiet })
    local empty = m:state()
    m:client(1, "romeo@montague.com/balcony", "<presence/>")
    eq(m:state() ~= empty, true, "state before")
    local huge = "<presence><status>" .. string.rep("x", 80 << 20) .. "</status></presence>"
    local e = C.raises(m.client, m, 2, "romeo@montague.com/balcony", huge)
    eq(e.code, "TRAP", "code of " .. tostring(e))
    -- Go's runtime ends a fatal error with `unreachable` on wasip1.
    eq(e.message:match("unreachable") ~= nil, true, "the trap: " .. e.message)
    eq(m:state(), empty, "the new machine is empty")
    m:client(3, "romeo@montague.com/balcony", "<presence/>")
    eq(m:state() ~= empty, true, "and works")
  end },
}
