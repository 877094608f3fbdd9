/*
 * lastseen_core: the low half of the Lua binding. It loads lastseen.wasm
 * with wasmtime's C API, gives the guest the WASI imports of wasm/ABI.md
 * section 2 (the page's minimal shim, as host functions) and moves bytes
 * in and out of the guest's buffers. It knows nothing of the event and
 * result formats: lastseen.lua encodes and decodes them, so that a new op
 * or output kind is a table row there, not C here.
 *
 * Why the shim and not wasmtime's WASI: wasmtime's WASI starts a thread
 * pool on the first instantiate, and Prosody's -D forks after its modules
 * load; the child loses those threads and the guest then hangs in
 * poll_oneoff (see the notes on real servers). The shim starts no thread.
 *
 * A trap (or proc_exit) ends an instance: step returns nil, "trap" and the
 * message, the instance is dead, and lastseen.lua makes a new one. No Lua
 * error is ever raised while wasmtime frames are on the stack: the WASI
 * functions below touch no Lua state, and the lastseen imports (ABI
 * version 3, facts from the host) call the instance's Lua host function
 * only through lua_pcall, so an error in it is a failed answer, not a
 * longjmp across wasmtime.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <lua.h>
#include <wasmtime.h>

#define MODULE_MT "lastseen.module"
#define INSTANCE_MT "lastseen.instance"
#define WASI "wasi_snapshot_preview1"
#define HOST "lastseen"
#define EBADF_ 8

/* ABI.md section 4: control block word offsets. */
enum { CTRL_VERSION = 0, CTRL_IN_PTR = 4, CTRL_IN_CAP = 8, CTRL_OUT_PTR = 12, CTRL_OUT_CAP = 16, CTRL_OUT_LEN = 20, CTRL_N_RESULTS = 24, CTRL_SIZE = 32 };

typedef struct {
  wasm_engine_t *engine;
  wasmtime_module_t *module;
  wasmtime_linker_t *linker;
  int quiet; /* drop what the guest writes (a fatal runtime error's text) */
} lmodule;

typedef struct {
  wasmtime_store_t *store;
  wasmtime_context_t *ctx;
  wasmtime_memory_t memory;
  wasmtime_func_t reserve, step, version;
  uint32_t ctrl;
  int live;
  /* During step: the Lua state that called it, with the instance at
   * stack index 1 (its user value 2 is the host function); NULL otherwise. */
  lua_State *L;
} linstance;

/* ---- messages out of wasmtime ---- */

static void push_bytes_msg(lua_State *L, wasm_byte_vec_t *v) {
  size_t n = v->size;
  /* Trap messages end in a NUL byte. */
  while (n > 0 && v->data[n - 1] == '\0') n--;
  lua_pushlstring(L, v->data, n);
  wasm_byte_vec_delete(v);
}

static void push_error(lua_State *L, wasmtime_error_t *err) {
  wasm_byte_vec_t v;
  wasmtime_error_message(err, &v);
  wasmtime_error_delete(err);
  push_bytes_msg(L, &v);
}

static void push_trap(lua_State *L, wasm_trap_t *trap) {
  wasm_byte_vec_t v;
  wasm_trap_message(trap, &v);
  wasm_trap_delete(trap);
  push_bytes_msg(L, &v);
}

/* ---- the WASI shim (ABI.md section 2) ---- */

/*
 * guest_mem returns the caller's memory and its size, or NULL. Every
 * pointer the guest passes is checked against the size, so a confused
 * guest gets EFAULT-like failure (a trap) rather than host memory.
 */
static uint8_t *guest_mem(wasmtime_caller_t *caller, size_t *size) {
  wasmtime_extern_t ext;
  if (!wasmtime_caller_export_get(caller, "memory", 6, &ext) || ext.kind != WASMTIME_EXTERN_MEMORY) return NULL;
  wasmtime_context_t *ctx = wasmtime_caller_context(caller);
  *size = wasmtime_memory_data_size(ctx, &ext.of.memory);
  return wasmtime_memory_data(ctx, &ext.of.memory);
}

static wasm_trap_t *bad_pointer(void) {
  static const char msg[] = "lastseen host: guest pointer out of bounds";
  return wasmtime_trap_new(msg, sizeof msg - 1);
}

#define ARG(i) ((uint32_t)args[i].of.i32)
#define RET(v) (results[0].kind = WASMTIME_I32, results[0].of.i32 = (v), (wasm_trap_t *)NULL)
#define IN_BOUNDS(p, n, size) ((uint64_t)(p) + (uint64_t)(n) <= (uint64_t)(size))

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); } /* x86-64 and the ABI are little-endian */
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static wasm_trap_t *w_zero_pair(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  size_t size;
  uint8_t *m = guest_mem(caller, &size);
  if (m == NULL || !IN_BOUNDS(ARG(0), 4, size) || !IN_BOUNDS(ARG(1), 4, size)) return bad_pointer();
  put32(m + ARG(0), 0);
  put32(m + ARG(1), 0);
  return RET(0);
}

static wasm_trap_t *w_zero(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  return RET(0);
}

static wasm_trap_t *w_ebadf(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  return RET(EBADF_);
}

static wasm_trap_t *w_clock_time_get(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  /* Clock 0 is the wall clock, the others monotonic: the guest's GC paces itself by them. */
  struct timespec ts;
  clock_gettime(ARG(0) == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
  uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  size_t size;
  uint8_t *m = guest_mem(caller, &size);
  uint32_t out = (uint32_t)args[2].of.i32;
  if (m == NULL || !IN_BOUNDS(out, 8, size)) return bad_pointer();
  memcpy(m + out, &ns, 8);
  return RET(0);
}

static wasm_trap_t *w_random_get(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  size_t size;
  uint8_t *m = guest_mem(caller, &size);
  uint32_t p = ARG(0), n = ARG(1);
  if (m == NULL || !IN_BOUNDS(p, n, size)) return bad_pointer();
  while (n > 0) {
    ssize_t got = getrandom(m + p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      static const char msg[] = "lastseen host: getrandom failed";
      return wasmtime_trap_new(msg, sizeof msg - 1);
    }
    p += (uint32_t)got;
    n -= (uint32_t)got;
  }
  return RET(0);
}

static wasm_trap_t *w_fd_write(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  /* Only a fatal runtime error writes (to fd 2): pass it to our stderr, unless quiet. */
  const lmodule *mod = env;
  size_t size;
  uint8_t *m = guest_mem(caller, &size);
  uint32_t iovs = ARG(1), n = ARG(2), nwritten = ARG(3), total = 0;
  if (m == NULL || !IN_BOUNDS(iovs, (uint64_t)n * 8, size) || !IN_BOUNDS(nwritten, 4, size)) return bad_pointer();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t p = get32(m + iovs + 8 * i), len = get32(m + iovs + 8 * i + 4);
    if (!IN_BOUNDS(p, len, size)) return bad_pointer();
    if (len > 0 && !mod->quiet && write(2, m + p, len) < 0) { /* nowhere to report it: the count still says written */ }
    total += len;
  }
  put32(m + nwritten, total);
  return RET(0);
}

static wasm_trap_t *w_proc_exit(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  char msg[64];
  int n = snprintf(msg, sizeof msg, "lastseen guest exited with code %u", ARG(0));
  return wasmtime_trap_new(msg, (size_t)n);
}

static wasm_trap_t *w_poll_oneoff(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  size_t size;
  uint8_t *m = guest_mem(caller, &size);
  if (m == NULL || !IN_BOUNDS(ARG(3), 4, size)) return bad_pointer();
  put32(m + ARG(3), 0);
  return RET(0);
}

/* ---- the lastseen imports (ABI.md section 5, "Facts from the host") ---- */

/* The arguments of one import call, for ask_lua. */
typedef struct {
  const char *name;
  const char *a, *b; /* owner, other (NULL for subscribers) */
  size_t alen, blen;
} host_call;

/*
 * ask_lua runs under lua_pcall, with the host function and the host_call
 * (a light userdata) on its stack: every push that may allocate, and so
 * raise, happens here, inside the protected call.
 */
static int ask_lua(lua_State *L) {
  const host_call *c = lua_touserdata(L, 2);
  lua_settop(L, 1);
  lua_pushstring(L, c->name);
  lua_pushlstring(L, c->a, c->alen);
  if (c->b != NULL) lua_pushlstring(L, c->b, c->blen);
  lua_call(L, c->b != NULL ? 3 : 2, 1);
  return 1;
}

/*
 * ask calls the instance's host function (set_host) as
 * fn(name, owner, other) under lua_pcall and returns its answer: an
 * integer, or for subscribers the list's bytes, copied to buf when they
 * fit buf_cap (the answer is then their length either way). Anything else,
 * an error in fn, no fn, or a call outside step, is -1: the guest then
 * refuses the event, and lastseen.lua reports the error fn recorded.
 * Nothing here raises outside the protected call: lua_checkstack,
 * lua_getiuservalue, the pushes of a light C function and a light
 * userdata, and reading an integer or a string do not allocate.
 */
static wasm_trap_t *ask(const char *name, wasmtime_caller_t *caller, const wasmtime_val_t *args, wasmtime_val_t *results, int list) {
  linstance *in = wasmtime_context_get_data(wasmtime_caller_context(caller));
  size_t size;
  uint8_t *m = guest_mem(caller, &size);
  if (m == NULL || !IN_BOUNDS(ARG(0), ARG(1), size) || !IN_BOUNDS(ARG(2), ARG(3), size)) return bad_pointer();
  lua_State *L = in == NULL ? NULL : in->L;
  if (L == NULL || !lua_checkstack(L, 8)) return RET(-1);
  int top = lua_gettop(L);
  int32_t answer = -1;
  host_call c = {name, (const char *)m + ARG(0), list ? NULL : (const char *)m + ARG(2), ARG(1), ARG(3)};
  lua_pushcfunction(L, ask_lua);
  if (lua_getiuservalue(L, 1, 2) == LUA_TFUNCTION) {
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
      int isint = 0;
      /* A number, not a string that reads as one: a list's bytes are a string. */
      lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
      if (isint && v >= INT32_MIN && v <= INT32_MAX) {
        answer = (int32_t)v;
      } else if (list && lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *b = lua_tolstring(L, -1, &n);
        if (n <= INT32_MAX) {
          /* The guest's memory cannot have moved: it is inside this call. */
          if (n <= ARG(3)) memcpy(m + ARG(2), b, n);
          answer = (int32_t)n;
        }
      }
    }
  }
  lua_settop(L, top);
  return RET(answer);
}

static wasm_trap_t *h_probe_facts(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  return ask("probe_facts", caller, args, results, 0);
}

static wasm_trap_t *h_blocks(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  return ask("blocks", caller, args, results, 0);
}

static wasm_trap_t *h_subscribers(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs, wasmtime_val_t *results, size_t nresults) {
  return ask("subscribers", caller, args, results, 1);
}

static const struct {
  const char *name;
  wasmtime_func_callback_t fn;
} host_imports[] = {
    {"probe_facts", h_probe_facts},
    {"blocks", h_blocks},
    {"subscribers", h_subscribers},
};

/* The shim, by import name; a module that imports anything else is refused at load. */
static const struct {
  const char *name;
  wasmtime_func_callback_t fn;
} shim[] = {
    {"args_sizes_get", w_zero_pair},
    {"environ_sizes_get", w_zero_pair},
    {"args_get", w_zero},
    {"environ_get", w_zero},
    {"clock_time_get", w_clock_time_get},
    {"random_get", w_random_get},
    {"fd_write", w_fd_write},
    {"proc_exit", w_proc_exit},
    {"sched_yield", w_zero},
    {"poll_oneoff", w_poll_oneoff},
    {"fd_close", w_ebadf},
    {"fd_fdstat_get", w_ebadf},
    {"fd_fdstat_set_flags", w_ebadf},
    {"fd_prestat_get", w_ebadf},
    {"fd_prestat_dir_name", w_ebadf},
};

/* ---- module ---- */

static void module_free(lmodule *m) {
  if (m->linker) wasmtime_linker_delete(m->linker);
  if (m->module) wasmtime_module_delete(m->module);
  if (m->engine) wasm_engine_delete(m->engine);
  m->linker = NULL;
  m->module = NULL;
  m->engine = NULL;
}

static int module_gc(lua_State *L) {
  module_free(luaL_checkudata(L, 1, MODULE_MT));
  return 0;
}

/*
 * define_imports defines the shim for every import of the module, with the
 * type the module declares. Go's module imports fd_write twice, hence
 * shadowing.
 */
static const char *define_imports(lmodule *m, char *why, size_t whylen) {
  wasm_importtype_vec_t imports;
  wasmtime_module_imports(m->module, &imports);
  const char *fail = NULL;
  for (size_t i = 0; i < imports.size && fail == NULL; i++) {
    const wasm_name_t *mod = wasm_importtype_module(imports.data[i]);
    const wasm_name_t *name = wasm_importtype_name(imports.data[i]);
    const wasm_functype_t *ft = wasm_externtype_as_functype_const(wasm_importtype_type(imports.data[i]));
    wasmtime_func_callback_t fn = NULL;
    if (mod->size == strlen(WASI) && memcmp(mod->data, WASI, mod->size) == 0 && ft != NULL) {
      for (size_t k = 0; k < sizeof shim / sizeof shim[0]; k++) {
        if (strlen(shim[k].name) == name->size && memcmp(shim[k].name, name->data, name->size) == 0) fn = shim[k].fn;
      }
    } else if (mod->size == strlen(HOST) && memcmp(mod->data, HOST, mod->size) == 0 && ft != NULL) {
      for (size_t k = 0; k < sizeof host_imports / sizeof host_imports[0]; k++) {
        if (strlen(host_imports[k].name) == name->size && memcmp(host_imports[k].name, name->data, name->size) == 0) fn = host_imports[k].fn;
      }
    }
    if (fn == NULL) {
      snprintf(why, whylen, "lastseen: the module imports %.*s.%.*s, which this host does not provide", (int)mod->size, mod->data, (int)name->size, name->data);
      fail = why;
      break;
    }
    wasmtime_error_t *err = wasmtime_linker_define_func(m->linker, mod->data, mod->size, name->data, name->size, ft, fn, m, NULL);
    if (err != NULL) {
      wasm_byte_vec_t v;
      wasmtime_error_message(err, &v);
      wasmtime_error_delete(err);
      snprintf(why, whylen, "lastseen: defining %.*s: %.*s", (int)name->size, name->data, (int)v.size, v.data);
      wasm_byte_vec_delete(&v);
      fail = why;
    }
  }
  wasm_importtype_vec_delete(&imports);
  return fail;
}

/*
 * core.compile(wasm_bytes[, quiet]) -> module | nil, message. With quiet,
 * the text of a guest's fatal runtime error is dropped, not written to
 * stderr (the trap's message still says what happened).
 */
static int l_compile(lua_State *L) {
  size_t len;
  const char *bytes = luaL_checklstring(L, 1, &len);
  int quiet = lua_toboolean(L, 2);
  lmodule *m = lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  m->quiet = quiet;
  luaL_setmetatable(L, MODULE_MT);
  m->engine = wasm_engine_new();
  wasmtime_error_t *err = wasmtime_module_new(m->engine, (const uint8_t *)bytes, len, &m->module);
  if (err != NULL) {
    module_free(m);
    lua_pushnil(L);
    push_error(L, err);
    return 2;
  }
  m->linker = wasmtime_linker_new(m->engine);
  wasmtime_linker_allow_shadowing(m->linker, true);
  char why[256];
  if (define_imports(m, why, sizeof why) != NULL) {
    module_free(m);
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  return 1;
}

/* core.wat2wasm(text) -> bytes | nil, message (for tests and experiments) */
static int l_wat2wasm(lua_State *L) {
  size_t len;
  const char *wat = luaL_checklstring(L, 1, &len);
  wasm_byte_vec_t out;
  wasmtime_error_t *err = wasmtime_wat2wasm(wat, len, &out);
  if (err != NULL) {
    lua_pushnil(L);
    push_error(L, err);
    return 2;
  }
  lua_pushlstring(L, out.data, out.size);
  wasm_byte_vec_delete(&out);
  return 1;
}

/* core.now() -> ns since the Unix epoch, the time format of ABI.md section 3 */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
  return 1;
}

/* ---- instance ---- */

static void instance_free(linstance *in) {
  if (in->store) wasmtime_store_delete(in->store);
  in->store = NULL;
  in->ctx = NULL;
  in->live = 0;
}

static int instance_gc(lua_State *L) {
  instance_free(luaL_checkudata(L, 1, INSTANCE_MT));
  return 0;
}

/*
 * call_i32 calls f with nargs (0 or 1) i32 arguments and nresults (0 or
 * 1) i32 results. It returns 1, or 0 with the message of the trap or
 * error pushed on the stack.
 */
static int call_i32(lua_State *L, linstance *in, wasmtime_func_t *f, int nargs, int32_t arg, int nresults, int32_t *res) {
  wasmtime_val_t a, r;
  a.kind = WASMTIME_I32;
  a.of.i32 = arg;
  wasm_trap_t *trap = NULL;
  wasmtime_error_t *err = wasmtime_func_call(in->ctx, f, &a, (size_t)nargs, &r, (size_t)nresults, &trap);
  if (err != NULL) {
    push_error(L, err);
    return 0;
  }
  if (trap != NULL) {
    push_trap(L, trap);
    return 0;
  }
  if (nresults > 0) *res = r.of.i32;
  return 1;
}

static int get_func(linstance *in, wasmtime_instance_t *inst, const char *name, wasmtime_func_t *f) {
  wasmtime_extern_t ext;
  if (!wasmtime_instance_export_get(in->ctx, inst, name, strlen(name), &ext) || ext.kind != WASMTIME_EXTERN_FUNC) return 0;
  *f = ext.of.func;
  return 1;
}

/*
 * module:instantiate([max_memory]) -> instance | nil, message. It runs
 * _initialize and lastseen_ctrl (ABI.md section 1, steps 3 and 5);
 * instance:abi_version() is step 4. max_memory caps the guest's linear
 * memory in bytes (the guest traps when it needs more).
 */
static int l_instantiate(lua_State *L) {
  lmodule *m = luaL_checkudata(L, 1, MODULE_MT);
  lua_Integer maxmem = luaL_optinteger(L, 2, -1);
  if (m->module == NULL) return luaL_error(L, "lastseen: module freed");
  linstance *in = lua_newuserdatauv(L, sizeof *in, 2);
  memset(in, 0, sizeof *in);
  luaL_setmetatable(L, INSTANCE_MT);
  lua_pushvalue(L, 1); /* the instance keeps its module (engine) alive */
  lua_setiuservalue(L, -2, 1);
  /* The store's data is the instance, for the lastseen imports: a Lua
   * userdata never moves. */
  in->store = wasmtime_store_new(m->engine, in, NULL);
  in->ctx = wasmtime_store_context(in->store);
  if (maxmem > 0) wasmtime_store_limiter(in->store, maxmem, -1, -1, -1, -1);
  wasmtime_instance_t inst;
  wasm_trap_t *trap = NULL;
  wasmtime_error_t *err = wasmtime_linker_instantiate(m->linker, in->ctx, m->module, &inst, &trap);
  if (err != NULL || trap != NULL) {
    lua_pushnil(L);
    if (err != NULL) push_error(L, err); else push_trap(L, trap);
    instance_free(in);
    return 2;
  }
  wasmtime_extern_t mem;
  wasmtime_func_t init, ctrl;
  if (!wasmtime_instance_export_get(in->ctx, &inst, "memory", 6, &mem) || mem.kind != WASMTIME_EXTERN_MEMORY ||
      !get_func(in, &inst, "_initialize", &init) || !get_func(in, &inst, "lastseen_abi_version", &in->version) ||
      !get_func(in, &inst, "lastseen_ctrl", &ctrl) || !get_func(in, &inst, "lastseen_reserve", &in->reserve) ||
      !get_func(in, &inst, "lastseen_step", &in->step)) {
    instance_free(in);
    lua_pushnil(L);
    lua_pushliteral(L, "lastseen: the module lacks an export of wasm/ABI.md section 1");
    return 2;
  }
  in->memory = mem.of.memory;
  int32_t c = 0;
  if (!call_i32(L, in, &init, 0, 0, 0, NULL) || !call_i32(L, in, &ctrl, 0, 0, 1, &c)) {
    instance_free(in);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  in->ctrl = (uint32_t)c;
  in->live = 1;
  return 1;
}

static linstance *check_live(lua_State *L) {
  linstance *in = luaL_checkudata(L, 1, INSTANCE_MT);
  if (!in->live) luaL_error(L, "lastseen: the instance trapped or was closed");
  return in;
}

/* ctrl_words reads the control block, or returns 0 if it is out of bounds. */
static int ctrl_words(linstance *in, uint32_t w[8]) {
  size_t size = wasmtime_memory_data_size(in->ctx, &in->memory);
  if (!IN_BOUNDS(in->ctrl, CTRL_SIZE, size)) return 0;
  const uint8_t *p = wasmtime_memory_data(in->ctx, &in->memory) + in->ctrl;
  for (int i = 0; i < 8; i++) w[i] = get32(p + 4 * i);
  return 1;
}

/* instance:abi_version() -> integer | nil, "trap", message */
static int l_abi_version(lua_State *L) {
  linstance *in = check_live(L);
  int32_t v = 0;
  if (!call_i32(L, in, &in->version, 0, 0, 1, &v)) {
    instance_free(in);
    lua_pushnil(L);
    lua_pushliteral(L, "trap");
    lua_rotate(L, -3, -1);
    return 3;
  }
  lua_pushinteger(L, v);
  return 1;
}

/*
 * instance:step(events) -> status, results, n_results
 *                       | nil, "trap" | "abi", message
 * events is the bytes of whole events (ABI.md section 5). The results are
 * a copy of the output region (section 6): the guest reuses it. After a
 * trap the instance is dead.
 */
static int l_step(lua_State *L) {
  linstance *in = check_live(L);
  size_t n;
  const char *events = luaL_checklstring(L, 2, &n);
  uint32_t w[8];
  if (in->L != NULL) {
    /* A host function called step: the guest is mid-step, its buffers in use. */
    lua_pushnil(L);
    lua_pushliteral(L, "reentry");
    lua_pushliteral(L, "lastseen: step called from inside a step (a host function called into its machine)");
    return 3;
  }
  lua_settop(L, 2); /* the instance stays at index 1 for the host function */
  if (n > INT32_MAX) {
    lua_pushnil(L);
    lua_pushliteral(L, "abi");
    lua_pushliteral(L, "lastseen: a batch over 2 GiB");
    return 3;
  }
  if (!ctrl_words(in, w)) goto badctrl;
  if (n > w[CTRL_IN_CAP / 4]) {
    int32_t st = 0;
    int ok;
    in->L = L;
    ok = call_i32(L, in, &in->reserve, 1, (int32_t)n, 1, &st);
    in->L = NULL;
    if (!ok) goto trapped;
    if (st != 0) {
      lua_pushnil(L);
      lua_pushliteral(L, "abi");
      lua_pushfstring(L, "lastseen_reserve(%d) returned status %d", (int)n, (int)st);
      return 3;
    }
    if (!ctrl_words(in, w)) goto badctrl;
  }
  {
    size_t size = wasmtime_memory_data_size(in->ctx, &in->memory);
    uint32_t inptr = w[CTRL_IN_PTR / 4];
    if (n > w[CTRL_IN_CAP / 4] || !IN_BOUNDS(inptr, n, size)) goto badctrl;
    memcpy(wasmtime_memory_data(in->ctx, &in->memory) + inptr, events, n);
  }
  int32_t status = 0;
  in->L = L;
  int stepped = call_i32(L, in, &in->step, 1, (int32_t)n, 1, &status);
  in->L = NULL;
  if (!stepped) goto trapped;
  /* Memory may have grown and the buffers moved: read everything afresh. */
  if (!ctrl_words(in, w)) goto badctrl;
  {
    size_t size = wasmtime_memory_data_size(in->ctx, &in->memory);
    uint32_t outptr = w[CTRL_OUT_PTR / 4], outlen = w[CTRL_OUT_LEN / 4];
    if (!IN_BOUNDS(outptr, outlen, size)) goto badctrl;
    lua_pushinteger(L, status);
    lua_pushlstring(L, (const char *)wasmtime_memory_data(in->ctx, &in->memory) + outptr, outlen);
    lua_pushinteger(L, w[CTRL_N_RESULTS / 4]);
  }
  return 3;

trapped:
  instance_free(in);
  lua_pushnil(L);
  lua_pushliteral(L, "trap");
  lua_rotate(L, -3, -1);
  return 3;
badctrl:
  lua_pushnil(L);
  lua_pushliteral(L, "abi");
  lua_pushliteral(L, "lastseen: the control block points outside the guest's memory");
  return 3;
}

/*
 * instance:set_host(fn | nil): the function that answers the lastseen
 * imports during step, fn(name, owner, other) with name probe_facts,
 * blocks (answer an integer) or subscribers (answer the list's bytes or a
 * negative integer; other is absent). It must not call step.
 */
static int l_set_host(lua_State *L) {
  luaL_checkudata(L, 1, INSTANCE_MT);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 2);
  return 0;
}

/* instance:live() -> boolean */
static int l_live(lua_State *L) {
  linstance *in = luaL_checkudata(L, 1, INSTANCE_MT);
  lua_pushboolean(L, in->live);
  return 1;
}

/* instance:close(): frees the store now rather than at collection. */
static int l_close(lua_State *L) {
  linstance *in = luaL_checkudata(L, 1, INSTANCE_MT);
  /* From a host function, mid-step: wasmtime is running in the store. */
  if (in->L != NULL) return luaL_error(L, "lastseen: an instance cannot be closed during its own step");
  instance_free(in);
  return 0;
}

/* instance:memory_size() -> bytes of the guest's linear memory */
static int l_memory_size(lua_State *L) {
  linstance *in = check_live(L);
  lua_pushinteger(L, (lua_Integer)wasmtime_memory_data_size(in->ctx, &in->memory));
  return 1;
}

/* new_class registers a userdata metatable with a finalizer and methods. */
static void new_class(lua_State *L, const char *name, lua_CFunction gc, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* fsync(file): flushes a Lua file handle and fsyncs its descriptor, so a
 * host can make a journal record durable before it routes the outputs of
 * the call that wrote it (standard Lua has no fsync). Returns true, or nil
 * and the error text. */
static int l_fsync(lua_State *L) {
  luaL_Stream *fh = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (fh->closef == NULL || fh->f == NULL) return luaL_error(L, "fsync: file is closed");
  if (fflush(fh->f) != 0 || fsync(fileno(fh->f)) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_lastseen_core(lua_State *L) {
  static const luaL_Reg module_methods[] = {{"instantiate", l_instantiate}, {NULL, NULL}};
  static const luaL_Reg instance_methods[] = {{"step", l_step}, {"set_host", l_set_host}, {"abi_version", l_abi_version}, {"live", l_live}, {"close", l_close}, {"memory_size", l_memory_size}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"compile", l_compile}, {"wat2wasm", l_wat2wasm}, {"now", l_now}, {"fsync", l_fsync}, {NULL, NULL}};

  new_class(L, MODULE_MT, module_gc, module_methods);
  new_class(L, INSTANCE_MT, instance_gc, instance_methods);

  luaL_newlib(L, funcs);
  return 1;
}
