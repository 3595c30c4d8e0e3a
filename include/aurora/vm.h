/*
 * vm.h: creating the Lua VMs the engine runs scripts in, and the helpers every binding uses to
 * report failures. A VM belongs to exactly one thread (a worker, or the test runner).
 */
#ifndef AURORA_VM_H
#define AURORA_VM_H

#include <stddef.h>

#include <lua.h>

#include "aurora/aurora.h"

struct aurora_worker;

/*
 * Pushes nil, a message built from fmt, and the word of err: the "world failed" return of every
 * binding. Returns 3, so a binding can `return aurora_vm_fail(L, ...)`. The message must never
 * contain a secret.
 */
int aurora_vm_fail(lua_State *L, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Raises a Lua argument error for argument idx unless every key of the table at idx is one of
 * names (a NULL-terminated list): "unknown option 'x'". Stack: unchanged. */
void aurora_vm_check_options(lua_State *L, int idx, const char *const *names);

/* Options for a new VM. */
typedef struct aurora_vm_opts {
    const char *app_dir;       /* prepended to package.path as DIR/?.lua and DIR/?/init.lua */
    const char *lib_dir;       /* searched after app_dir the same way (tests: the Aurora app) */
    size_t mem_limit;          /* bytes the VM may allocate; 0 = no limit */
    struct aurora_worker *worker; /* the worker that owns the VM, or NULL (tests, checks) */
} aurora_vm_opts;

/*
 * Creates a VM with the standard libraries, every aurora.* module in package.preload, strict
 * globals and the warning function routed to the log. Returns NULL when out of memory. Caller
 * closes with aurora_vm_close.
 */
lua_State *aurora_vm_new(const aurora_vm_opts *opts);

/* Closes the VM and sets *L to NULL. Harmless on NULL. */
void aurora_vm_close(lua_State **L);

/* The worker that owns the VM of L (any thread of it), or NULL outside a worker. */
struct aurora_worker *aurora_vm_worker(lua_State *L);

/* Bytes currently allocated by the VM of L. */
size_t aurora_vm_mem_used(lua_State *L);

/*
 * Calls the function on top of the stack (below it nargs arguments) with a traceback message
 * handler. On error, returns the Lua status and leaves "message\ntraceback" on the stack in place
 * of the function and arguments; on success leaves nresults results. Like lua_pcall otherwise.
 */
int aurora_vm_pcall(lua_State *L, int nargs, int nresults);

#endif
