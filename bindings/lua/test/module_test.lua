-- Loading: what the binding refuses before any event runs, and the wire
-- format of the drivers.
local lastseen = require "lastseen"
local W = require "lastseen_wire"
local C = require "check"
local eq = C.eq

local function module(wat) return assert(lastseen.wat2wasm(wat)) end

local ABI_EXPORTS = [[
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (func (export "lastseen_ctrl") (result i32) (i32.const 0))
  (func (export "lastseen_reserve") (param i32) (result i32) (i32.const 0))
  (func (export "lastseen_step") (param i32) (result i32) (i32.const 0))
]]

return {
  { "fsync writes a file handle's buffer through, and refuses a closed one", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("journal record")
    eq(lastseen.fsync(f), true, "fsync")
    local r = assert(io.open(path, "rb"))
    eq(r:read("a"), "journal record", "bytes on disk before close")
    r:close()
    f:close()
    eq(pcall(lastseen.fsync, f), false, "closed handle")
    eq(pcall(lastseen.fsync, "not a file"), false, "not a file")
    os.remove(path)
  end },

  { "a module importing more than the WASI shim is refused", function()
    local e = C.raises(lastseen.compile, module('(module (import "env" "ask" (func)))'), true)
    eq({ e.code, e.message }, { "ABI", "lastseen: the module imports env.ask, which this host does not provide" }, "error")
    e = C.raises(lastseen.compile, module('(module (import "wasi_snapshot_preview1" "path_open" (func)))'), true)
    eq(e.message:match("path_open") ~= nil, true, e.message)
  end },

  { "a module of another ABI version is refused", function()
    local mod = lastseen.compile(module("(module " .. ABI_EXPORTS .. '(func (export "lastseen_abi_version") (result i32) (i32.const 2)))'), true)
    local e = C.raises(lastseen.new, { served = { "montague.com" }, wasm = mod })
    eq({ e.code, e.message }, { "ABI", "lastseen.wasm speaks ABI version 2, this binding 3" }, "error")
  end },

  { "a module without the ABI's exports is refused", function()
    local mod = lastseen.compile(module('(module (memory (export "memory") 1))'), true)
    local e = C.raises(lastseen.new, { served = { "montague.com" }, wasm = mod })
    eq(e.message:match("lacks an export") ~= nil, true, e.message)
  end },

  { "not a module", function()
    eq(C.raises(lastseen.compile, "not wasm", true).code, "ABI", "code")
  end },

  { "the drivers' wire format round-trips", function()
    local bytes = "\0\1\2\255<presence/>\"\\"
    for n = 0, 5 do eq(W.b64decode(W.b64encode(bytes:sub(1, n))), bytes:sub(1, n), "base64 of " .. n .. " bytes") end
    eq(W.b64encode("Man"), "TWFu", "base64")
    local v = W.decode([[ {"op":"new","served":["montague.com","caf\u00e9.lit","\ud83d\ude00"],"n":-12,"f":1.5,"t":true,"z":null,"e":[]} ]])
    eq(v, { op = "new", served = { "montague.com", "café.lit", "😀" }, n = -12, f = 1.5, t = true, e = {} }, "decoded")
    eq(W.decode(W.encode({ s = "a\"b\\c\n\1" })), { s = "a\"b\\c\n\1" }, "string escapes")
    eq(W.encode(W.array({})), "[]", "empty array")
  end },
}
