/*
 * worker.h: a worker is one thread's event loop: an epoll set, a timer heap, a queue of calls
 * posted from other threads, and the Lua VM generations whose coroutines ("tasks") it drives.
 * Request handlers, background timers and tests all run as tasks. A task that waits (for an HTTP
 * reply, a sleep, another task's result) yields; the loop resumes it when the wait is over. Every
 * function here must be called on the worker's own thread unless it says otherwise.
 */
#ifndef AURORA_WORKER_H
#define AURORA_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "aurora/vm.h"

typedef struct aurora_worker aurora_worker;
typedef struct aurora_task aurora_task;
typedef struct aurora_gen aurora_gen;

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t aurora_now_ms(void);

/* ---- timers ------------------------------------------------------------------------------- */

typedef void (*aurora_timer_fn)(aurora_worker *w, void *arg);

typedef struct aurora_timer {
    uint64_t due;   /* monotonic ms */
    size_t slot;    /* index in the heap + 1; 0 when not scheduled */
    aurora_timer_fn fn;
    void *arg;
} aurora_timer;

/* (Re)schedules t to fire fn(w, arg) at monotonic time due (ms). t is owned by the caller and
 * must stay valid until it fires or is cancelled. Returns 0 or AURORA_E_NOMEM. */
int aurora_timer_start(aurora_worker *w, aurora_timer *t, uint64_t due);

/* Unschedules t; harmless when it is not scheduled. */
void aurora_timer_stop(aurora_worker *w, aurora_timer *t);

/* ---- file descriptors ---------------------------------------------------------------------- */

typedef void (*aurora_fd_fn)(aurora_worker *w, int fd, uint32_t events, void *arg);

/* Watches fd for EPOLLIN/EPOLLOUT events (adds, or modifies an existing watch). The callback may
 * not resume tasks directly when it is called from inside a library callback. Returns 0 or an
 * aurora_err. */
int aurora_worker_watch(aurora_worker *w, int fd, uint32_t events, aurora_fd_fn fn, void *arg);

/* Stops watching fd. */
void aurora_worker_unwatch(aurora_worker *w, int fd);

/* ---- the loop ------------------------------------------------------------------------------ */

typedef void (*aurora_pass_fn)(aurora_worker *w, void *arg);

/* Loads the app into a new VM generation's fresh VM L. Returns 0, or non-zero with err filled
 * (the VM is then closed and the previous generation keeps serving). */
typedef int (*aurora_loader_fn)(aurora_worker *w, lua_State *L, void *arg, char *err,
                                size_t errlen);

/* Creates a worker (no thread yet) with its first VM (made from opts, opts->worker is set by
 * the worker) and the app loaded by loader. Returns NULL with err filled on failure. Caller
 * frees with aurora_worker_free. */
aurora_worker *aurora_worker_new(int id, const struct aurora_vm_opts *opts, aurora_loader_fn loader,
                                 void *loader_arg, char *err, size_t errlen);

/* Frees a worker whose loop has ended (closes every VM, cancels every task). Sets *w to NULL. */
void aurora_worker_free(aurora_worker **w);

/* Registers fn to run after every loop pass (after timers and fd events), in registration
 * order. Used by the HTTP client and server. */
int aurora_worker_on_pass(aurora_worker *w, aurora_pass_fn fn, void *arg);

/* Runs the loop until aurora_worker_stop is called and no task is left, or until *until becomes
 * non-zero (when until is not NULL). */
void aurora_worker_run(aurora_worker *w, volatile int *until);

/* Asks the loop to end once no task is left. Any thread. */
void aurora_worker_stop(aurora_worker *w);

/* Runs fn(w, arg) on the worker's thread at its next pass. Any thread. Returns 0 or NOMEM. */
int aurora_worker_post(aurora_worker *w, aurora_pass_fn fn, void *arg);

/* Asks the worker to load a new VM generation at its next pass (reload). Any thread. */
void aurora_worker_reload(aurora_worker *w);

/* The worker's number (1-based) and its current VM. */
int aurora_worker_id(const aurora_worker *w);
lua_State *aurora_worker_vm(aurora_worker *w);

/* Number of tasks not yet finished, in every generation. */
int aurora_worker_tasks(const aurora_worker *w);

/* Opaque per-worker slots for the units that hang state on a worker. */
enum { AURORA_SLOT_HTTP, AURORA_SLOT_SERVER, AURORA_SLOT_COUNT };
void *aurora_worker_slot(aurora_worker *w, int slot);
void aurora_worker_set_slot(aurora_worker *w, int slot, void *p);

/* ---- tasks --------------------------------------------------------------------------------- */

/* Called once when a task's coroutine ends. status is LUA_OK (the results are on task->co's
 * stack, count nres) or an error status (the message with traceback is in msg). The task and its
 * coroutine are recycled after the call returns. */
typedef void (*aurora_done_fn)(aurora_task *t, int status, int nres, const char *msg);

/* What a waiting task must do when it is cancelled (deadline, shutdown): undo the wait. */
typedef void (*aurora_cancel_fn)(aurora_task *t, void *wait);

struct aurora_task {
    aurora_worker *w;
    aurora_gen *gen;
    lua_State *co;
    int ref;                  /* the coroutine in the VM's registry */
    aurora_done_fn done;
    void *owner;              /* the done callback's context (a request) */
    aurora_cancel_fn cancel;  /* set while waiting */
    void *wait;
    uint64_t deadline;        /* monotonic ms; 0 = none */
    aurora_timer deadline_timer;
    aurora_timer wake_timer;  /* sleeps and plain yields */
    aurora_task *next, *prev; /* the worker's live list, or its free list */
    int expired;              /* its deadline passed (the error it ended with is that) */
    int err_status;           /* set when the error raised was a table with an HTTP status */
    int err_drop;             /* the error raised was error{drop = true} */
    int running;              /* inside lua_resume */
    int finished;
};

/*
 * Starts a task on the worker's current VM: the function to run and its nargs arguments are on
 * top of the VM's main stack (they are moved to the coroutine). deadline_ms (0 = none) kills the
 * task with a "deadline exceeded" error when reached. The task may finish before this returns
 * (done already called). Returns the task, or NULL when no task could be made (done was not
 * called; the values were popped).
 */
aurora_task *aurora_task_start(aurora_worker *w, int nargs, uint64_t deadline_ms,
                               aurora_done_fn done, void *owner);

/* The task running the coroutine L, or NULL (main thread, or not a worker VM). */
aurora_task *aurora_task_of(lua_State *L);

/*
 * Makes the running task wait: records cancel/wait and yields. A binding ends with
 * `return aurora_task_wait(L, cancel, wait);`. Raises when L is not a task that can yield.
 * When woken, the values pushed by the waker become the binding's results.
 */
int aurora_task_wait(lua_State *L, aurora_cancel_fn cancel, void *wait);

/* Raises unless L is a task coroutine that may yield now ("fname: cannot wait here ..."). Call
 * it before starting the work a wait would be for. */
void aurora_task_check_wait(lua_State *L, const char *fname);

/* Wakes a waiting task with the nres values the caller pushed onto t->co. Only from the worker's
 * loop (timer callbacks, pass hooks, posted calls), never from inside a library callback. */
void aurora_task_wake(aurora_task *t, int nres);

/* Makes the running task sleep ms milliseconds (a binding ends with `return
 * aurora_task_sleep(L, ms);`). Raises when L cannot wait. */
int aurora_task_sleep(lua_State *L, uint64_t ms);

/*
 * Schedules the Lua function at idx of L (a coroutine of a worker VM) to run as a task after
 * delay_ms, then every interval_ms when that is not 0 (runs never overlap: the next one is
 * scheduled when the previous one ends). Belongs to L's VM generation: a reload stops it.
 * Returns the timer id (> 0). Raises outside a worker VM.
 */
int aurora_worker_schedule(lua_State *L, int idx, uint64_t delay_ms, uint64_t interval_ms);

/* Stops the timer id of L's generation. Returns 1 when it existed. */
int aurora_worker_unschedule(lua_State *L, int id);

/* Kills every task of the worker that is waiting (before detaching what they wait on). */
void aurora_worker_kill_tasks(aurora_worker *w, const char *why);

/* Ends a task at once with an error (cancel its wait, close its coroutine, call done). */
void aurora_task_kill(aurora_task *t, const char *why);

#endif
