/*
 * worker.c: one event loop per worker thread (see worker.h). It owns an epoll set, a binary heap
 * of timers, an eventfd for calls posted from other threads, and the Lua VM generations whose
 * coroutines it runs. Nothing here blocks except epoll_wait; nothing here knows about HTTP: the
 * HTTP client and server hang their state on slots and run from pass hooks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/log.h"
#include "aurora/vm.h"
#include "aurora/worker.h"

#define MAX_EVENTS 256
#define MAX_PASS_HOOKS 8
#define MAX_SLEEP_MS 1000
#define HOOK_COUNT 10000
#define TIMER_TASK_MS (10 * 60 * 1000)

/* A watched descriptor, in a table indexed by fd. seq tells a stale epoll event (for an fd that
 * was unwatched, and maybe reused, earlier in the same pass) from a current one. */
typedef struct watch {
    aurora_fd_fn fn;        /* NULL when not watched */
    void *arg;
    uint32_t seq;
} watch;

typedef struct post {
    aurora_pass_fn fn;
    void *arg;
    struct post *next;
} post;

/* One loaded VM and everything that must die with it. */
struct aurora_gen {
    lua_State *L;
    int tasks;              /* tasks started on it and not yet finished */
    int *pool;              /* refs of idle coroutines */
    int npool, cappool;
    aurora_gen *next;       /* older generations, kept until their last task ends */
    struct sched *scheds;   /* aurora.timer entries; stopped when the generation retires */
    int next_sched_id;
    aurora_worker *w;
};

/* A Lua function scheduled by aurora.timer. */
typedef struct sched {
    aurora_timer timer;
    aurora_gen *gen;
    int fn_ref;
    int id;
    uint64_t interval;
    int running;            /* a task of it is still going: intervals do not overlap */
    int cancelled;
    struct sched *next;
} sched;

struct aurora_worker {
    int id;
    int epfd, evfd;
    aurora_loader_fn loader;
    void *loader_arg;
    aurora_vm_opts vm_opts;
    aurora_gen *gen;        /* current generation (new tasks start here) */
    aurora_gen *old;        /* retiring generations */
    aurora_gen *loading;    /* the generation whose VM is being loaded */
    int ntasks;
    aurora_timer **heap;
    size_t nheap, capheap;
    watch *watches;         /* indexed by fd */
    int nwatches;
    uint32_t watch_seq;
    struct { aurora_pass_fn fn; void *arg; } hooks[MAX_PASS_HOOKS];
    int nhooks;
    pthread_mutex_t lock;   /* guards posts */
    post *posts;
    atomic_int sleeping;
    atomic_int stop;
    atomic_int reload;
    aurora_task *free_tasks;
    aurora_task *live;      /* tasks not yet finished (doubly linked through next/prev) */
    void *slots[AURORA_SLOT_COUNT];
};

uint64_t aurora_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- timers: a binary min-heap on due time; slot is the index + 1 ------------------------- */

static void heap_set(aurora_worker *w, size_t i, aurora_timer *t)
{
    w->heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(aurora_worker *w, size_t i)
{
    aurora_timer *t = w->heap[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p]->due <= t->due)
            break;
        heap_set(w, i, w->heap[p]);
        i = p;
    }
    heap_set(w, i, t);
}

static void heap_down(aurora_worker *w, size_t i)
{
    aurora_timer *t = w->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && w->heap[c + 1]->due < w->heap[c]->due)
            c++;
        if (w->heap[c]->due >= t->due)
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, t);
}

void aurora_timer_stop(aurora_worker *w, aurora_timer *t)
{
    size_t i;
    aurora_timer *last;

    if (!t->slot)
        return;
    i = t->slot - 1;
    t->slot = 0;
    last = w->heap[--w->nheap];
    if (i == w->nheap)
        return;
    heap_set(w, i, last);
    heap_up(w, i);
    heap_down(w, last->slot - 1);
}

int aurora_timer_start(aurora_worker *w, aurora_timer *t, uint64_t due)
{
    aurora_timer_stop(w, t);
    if (w->nheap == w->capheap) {
        size_t cap = w->capheap ? w->capheap * 2 : 64;
        aurora_timer **h = realloc(w->heap, cap * sizeof(*h));
        if (!h)
            return AURORA_E_NOMEM;
        w->heap = h;
        w->capheap = cap;
    }
    t->due = due;
    heap_set(w, w->nheap++, t);
    heap_up(w, w->nheap - 1);
    return 0;
}

static void run_timers(aurora_worker *w)
{
    uint64_t now = aurora_now_ms();

    while (w->nheap && w->heap[0]->due <= now) {
        aurora_timer *t = w->heap[0];
        aurora_timer_stop(w, t);
        t->fn(w, t->arg);
    }
}

/* ---- file descriptors ----------------------------------------------------------------------- */

int aurora_worker_watch(aurora_worker *w, int fd, uint32_t events, aurora_fd_fn fn, void *arg)
{
    struct epoll_event ev = {.events = events};
    watch *x;
    int op;

    if (fd < 0)
        return AURORA_E_INVALID;
    if (fd >= w->nwatches) {
        int n = w->nwatches ? w->nwatches : 64;
        watch *p;
        while (n <= fd)
            n *= 2;
        p = realloc(w->watches, (size_t)n * sizeof(*p));
        if (!p)
            return AURORA_E_NOMEM;
        memset(p + w->nwatches, 0, (size_t)(n - w->nwatches) * sizeof(*p));
        w->watches = p;
        w->nwatches = n;
    }
    x = &w->watches[fd];
    op = x->fn ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (!x->fn)
        x->seq = ++w->watch_seq;
    ev.data.u64 = (uint64_t)x->seq << 32 | (uint32_t)fd;
    if (epoll_ctl(w->epfd, op, fd, &ev) != 0 &&
        (errno != EEXIST || epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) != 0))
        return AURORA_E_IO;
    x->fn = fn;
    x->arg = arg;
    return 0;
}

void aurora_worker_unwatch(aurora_worker *w, int fd)
{
    if (fd < 0 || fd >= w->nwatches || !w->watches[fd].fn)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->watches[fd].fn = NULL;
}

/* ---- generations ---------------------------------------------------------------------------- */

static void sched_free(aurora_gen *g, sched *x)
{
    for (sched **p = &g->scheds; *p; p = &(*p)->next) {
        if (*p == x) {
            *p = x->next;
            break;
        }
    }
    aurora_timer_stop(g->w, &x->timer);
    if (g->L)
        luaL_unref(g->L, LUA_REGISTRYINDEX, x->fn_ref);
    free(x);
}

/* Stops every scheduled function of a generation that is retiring or closing. */
static void gen_unschedule(aurora_gen *g)
{
    for (sched *x = g->scheds, *n; x; x = n) {
        n = x->next;
        if (x->running)
            x->cancelled = 1; /* freed when its task ends */
        else
            sched_free(g, x);
    }
}

static void gen_close(aurora_gen *g)
{
    gen_unschedule(g);
    while (g->scheds) {
        /* Only possible when the worker is freed with tasks still open. */
        g->scheds->running = 0;
        sched_free(g, g->scheds);
    }
    aurora_vm_close(&g->L);
    free(g->pool);
    free(g);
}

static aurora_gen *gen_load(aurora_worker *w, char *err, size_t errlen)
{
    aurora_gen *g = calloc(1, sizeof(*g));
    aurora_vm_opts opts = w->vm_opts;
    int rc;

    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->w = w;
    opts.worker = w;
    g->L = aurora_vm_new(&opts);
    if (!g->L) {
        snprintf(err, errlen, "cannot create a Lua VM: out of memory");
        free(g);
        return NULL;
    }
    /* Tasks and timers started while the app loads belong to this generation. */
    w->loading = g;
    rc = w->loader(w, g->L, w->loader_arg, err, errlen);
    w->loading = NULL;
    if (rc != 0) {
        gen_close(g);
        return NULL;
    }
    return g;
}

/* Closes retiring generations that have no task left. */
static void gen_reap(aurora_worker *w)
{
    for (aurora_gen **p = &w->old; *p;) {
        aurora_gen *g = *p;
        if (g->tasks == 0) {
            *p = g->next;
            gen_close(g);
        } else {
            p = &g->next;
        }
    }
}

static void do_reload(aurora_worker *w)
{
    char err[512];
    aurora_gen *g = gen_load(w, err, sizeof(err));
    char id[16];

    snprintf(id, sizeof(id), "%d", w->id);
    if (!g) {
        aurora_log(AURORA_LOG_ERROR, "reload failed; keeping the old scripts", "worker", id,
                   "error", err, NULL);
        return;
    }
    gen_unschedule(w->gen);
    w->gen->next = w->old;
    w->old = w->gen;
    w->gen = g;
    gen_reap(w);
    aurora_log(AURORA_LOG_DEBUG, "scripts reloaded", "worker", id, NULL);
}

/* ---- tasks ---------------------------------------------------------------------------------- */

aurora_task *aurora_task_of(lua_State *L)
{
    return *(aurora_task **)lua_getextraspace(L);
}

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    aurora_task *t = aurora_task_of(L);

    (void)ar;
    if (t && t->deadline && aurora_now_ms() > t->deadline) {
        t->expired = 1;
        lua_pushliteral(L, "deadline exceeded");
        lua_error(L);
    }
}

static lua_State *co_take(aurora_gen *g, int *ref)
{
    lua_State *co;

    if (g->npool) {
        *ref = g->pool[--g->npool];
        lua_rawgeti(g->L, LUA_REGISTRYINDEX, *ref);
        co = lua_tothread(g->L, -1);
        lua_pop(g->L, 1);
        return co;
    }
    co = lua_newthread(g->L);
    lua_sethook(co, deadline_hook, LUA_MASKCOUNT, HOOK_COUNT);
    *ref = luaL_ref(g->L, LUA_REGISTRYINDEX);
    return co;
}

static void co_give(aurora_gen *g, lua_State *co, int ref, int reusable)
{
    *(aurora_task **)lua_getextraspace(co) = NULL;
    if (reusable && g->npool < 256) {
        if (g->npool == g->cappool) {
            int cap = g->cappool ? g->cappool * 2 : 16;
            int *p = realloc(g->pool, (size_t)cap * sizeof(*p));
            if (p) {
                g->pool = p;
                g->cappool = cap;
            }
        }
        if (g->npool < g->cappool) {
            lua_settop(co, 0);
            g->pool[g->npool++] = ref;
            return;
        }
    }
    luaL_unref(g->L, LUA_REGISTRYINDEX, ref);
}

static void task_deadline(aurora_worker *w, void *arg)
{
    aurora_task *t = arg;

    (void)w;
    t->expired = 1;
    aurora_task_kill(t, "deadline exceeded");
}

static void task_finish(aurora_task *t, int status, int nres, const char *msg)
{
    aurora_worker *w = t->w;
    aurora_gen *g = t->gen;

    t->finished = 1;
    if (t->prev)
        t->prev->next = t->next;
    else if (w->live == t)
        w->live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    aurora_timer_stop(w, &t->deadline_timer);
    aurora_timer_stop(w, &t->wake_timer);
    if (t->done)
        t->done(t, status, nres, msg);
    co_give(g, t->co, t->ref, status == LUA_OK);
    g->tasks--;
    w->ntasks--;
    memset(t, 0, sizeof(*t));
    t->next = w->free_tasks;
    w->free_tasks = t;
}

static void wake_now(aurora_worker *w, void *arg)
{
    (void)w;
    aurora_task_wake(arg, 0);
}

static void stop_wake_timer(aurora_task *t, void *wait)
{
    (void)wait;
    aurora_timer_stop(t->w, &t->wake_timer);
}

/* Resumes t->co with nargs values on its stack and handles whatever comes back. */
static void task_resume(aurora_task *t, int nargs)
{
    lua_State *co = t->co;
    int nres = 0, status;

    t->running = 1;
    status = lua_resume(co, t->gen->L, nargs, &nres);
    t->running = 0;
    if (status == LUA_YIELD) {
        if (!t->cancel) {
            /* A plain coroutine.yield() reached the engine: it gives way to other work and
             * carries on at the next pass. */
            lua_pop(co, nres);
            t->cancel = stop_wake_timer;
            t->wake_timer.fn = wake_now;
            t->wake_timer.arg = t;
            aurora_timer_start(t->w, &t->wake_timer, 0);
        }
        return;
    }
    if (status == LUA_OK) {
        task_finish(t, LUA_OK, nres, NULL);
        return;
    }
    {
        char *msg;

        if (lua_istable(co, -1)) {
            /* error{status = 400, error = "..."}: a deliberate answer, not a bug;
             * error{drop = true}: close the connection without any answer. */
            lua_getfield(co, -1, "status");
            t->err_status = (int)lua_tointeger(co, -1);
            lua_getfield(co, -2, "error");
            msg = strdup(lua_isstring(co, -1) ? lua_tostring(co, -1) : "error");
            lua_getfield(co, -3, "drop");
            t->err_drop = lua_toboolean(co, -1);
            lua_pop(co, 3);
            if (t->err_status < 400 || t->err_status > 599)
                t->err_status = 0;
        } else {
            const char *m = lua_tostring(co, -1);
            luaL_traceback(t->gen->L, co, m ? m : "(error object is not a string)", 0);
            msg = strdup(lua_tostring(t->gen->L, -1));
            lua_pop(t->gen->L, 1);
        }
        lua_resetthread(co);
        task_finish(t, status, 0, msg ? msg : "error");
        free(msg);
    }
}

static aurora_task *task_start(aurora_worker *w, aurora_gen *g, int nargs, uint64_t deadline_ms,
                               aurora_done_fn done, void *owner)
{
    lua_State *L = g->L;
    aurora_task *t = w->free_tasks;

    if (t) {
        w->free_tasks = t->next;
    } else {
        t = malloc(sizeof(*t));
        if (!t) {
            lua_pop(L, nargs + 1);
            return NULL;
        }
    }
    memset(t, 0, sizeof(*t));
    t->w = w;
    t->gen = g;
    t->done = done;
    t->owner = owner;
    t->deadline = deadline_ms;
    t->co = co_take(g, &t->ref);
    *(aurora_task **)lua_getextraspace(t->co) = t;
    g->tasks++;
    w->ntasks++;
    t->next = w->live;
    if (w->live)
        w->live->prev = t;
    w->live = t;
    lua_xmove(L, t->co, nargs + 1);
    if (deadline_ms) {
        t->deadline_timer.fn = task_deadline;
        t->deadline_timer.arg = t;
        aurora_timer_start(w, &t->deadline_timer, deadline_ms);
    }
    task_resume(t, nargs);
    return t;
}

aurora_task *aurora_task_start(aurora_worker *w, int nargs, uint64_t deadline_ms,
                               aurora_done_fn done, void *owner)
{
    return task_start(w, w->loading ? w->loading : w->gen, nargs, deadline_ms, done, owner);
}

void aurora_task_check_wait(lua_State *L, const char *fname)
{
    aurora_task *t = aurora_task_of(L);

    if (!t || !t->running || !lua_isyieldable(L))
        luaL_error(L, "%s: cannot wait here (only inside a request, timer or test, and not in a "
                      "sort comparator, gsub callback, __tostring, __gc or a script's own "
                      "coroutine)", fname);
}

int aurora_task_wait(lua_State *L, aurora_cancel_fn cancel, void *wait)
{
    aurora_task *t = aurora_task_of(L);

    aurora_task_check_wait(L, "wait");
    t->cancel = cancel;
    t->wait = wait;
    return lua_yield(L, 0);
}

void aurora_task_wake(aurora_task *t, int nres)
{
    t->cancel = NULL;
    t->wait = NULL;
    task_resume(t, nres);
}

int aurora_task_sleep(lua_State *L, uint64_t ms)
{
    aurora_task *t = aurora_task_of(L);

    aurora_task_check_wait(L, "sleep");
    t->wake_timer.fn = wake_now;
    t->wake_timer.arg = t;
    if (aurora_timer_start(t->w, &t->wake_timer, aurora_now_ms() + ms) != 0)
        return luaL_error(L, "not enough memory");
    return aurora_task_wait(L, stop_wake_timer, NULL);
}

void aurora_worker_kill_tasks(aurora_worker *w, const char *why)
{
    aurora_task *t = w->live;

    while (t) {
        aurora_task *next = t->next;
        if (!t->running)
            aurora_task_kill(t, why);
        t = next;
    }
}

void aurora_task_kill(aurora_task *t, const char *why)
{
    if (t->finished || t->running)
        return;
    if (t->cancel) {
        aurora_cancel_fn c = t->cancel;
        t->cancel = NULL;
        c(t, t->wait);
        t->wait = NULL;
    }
    lua_resetthread(t->co);
    task_finish(t, LUA_ERRRUN, 0, why);
}

/* ---- the loop ------------------------------------------------------------------------------- */

static void wake_fd(aurora_worker *w)
{
    uint64_t one = 1;

    if (write(w->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        aurora_log(AURORA_LOG_ERROR, "eventfd write failed", NULL);
}

static void signal_worker(aurora_worker *w)
{
    if (atomic_exchange(&w->sleeping, 0))
        wake_fd(w);
}

int aurora_worker_post(aurora_worker *w, aurora_pass_fn fn, void *arg)
{
    post *p = malloc(sizeof(*p)), **tail;

    if (!p)
        return AURORA_E_NOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&w->lock);
    for (tail = &w->posts; *tail; tail = &(*tail)->next)
        ;
    *tail = p;
    pthread_mutex_unlock(&w->lock);
    signal_worker(w);
    return 0;
}

void aurora_worker_stop(aurora_worker *w)
{
    atomic_store(&w->stop, 1);
    signal_worker(w);
}

void aurora_worker_reload(aurora_worker *w)
{
    atomic_store(&w->reload, 1);
    signal_worker(w);
}

static void run_posts(aurora_worker *w)
{
    post *p;

    pthread_mutex_lock(&w->lock);
    p = w->posts;
    w->posts = NULL;
    pthread_mutex_unlock(&w->lock);
    while (p) {
        post *n = p->next;
        p->fn(w, p->arg);
        free(p);
        p = n;
    }
}

static int posts_pending(aurora_worker *w)
{
    int any;

    pthread_mutex_lock(&w->lock);
    any = w->posts != NULL;
    pthread_mutex_unlock(&w->lock);
    return any;
}

static void drain_evfd(aurora_worker *w, int fd, uint32_t events, void *arg)
{
    uint64_t v;

    (void)fd, (void)events, (void)arg;
    while (read(w->evfd, &v, sizeof(v)) > 0)
        ;
}

int aurora_worker_on_pass(aurora_worker *w, aurora_pass_fn fn, void *arg)
{
    if (w->nhooks == MAX_PASS_HOOKS)
        return AURORA_E_NOMEM;
    w->hooks[w->nhooks].fn = fn;
    w->hooks[w->nhooks].arg = arg;
    w->nhooks++;
    return 0;
}

void aurora_worker_run(aurora_worker *w, volatile int *until)
{
    struct epoll_event evs[MAX_EVENTS];

    while (!(until && *until)) {
        int timeout = MAX_SLEEP_MS, n;

        if (atomic_load(&w->stop) && w->ntasks == 0)
            break;
        if (w->nheap) {
            uint64_t now = aurora_now_ms(), due = w->heap[0]->due;
            timeout = due <= now ? 0 : (due - now > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)(due - now));
        }
        atomic_store(&w->sleeping, 1);
        if (posts_pending(w) || atomic_load(&w->reload) || atomic_load(&w->stop))
            timeout = 0;
        n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
        atomic_store(&w->sleeping, 0);
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            watch *x = fd < w->nwatches ? &w->watches[fd] : NULL;
            /* An earlier callback of this pass may have unwatched it: skip stale events. */
            if (x && x->fn && x->seq == (uint32_t)(evs[i].data.u64 >> 32))
                x->fn(w, fd, evs[i].events, x->arg);
        }
        run_timers(w);
        run_posts(w);
        for (int i = 0; i < w->nhooks; i++)
            w->hooks[i].fn(w, w->hooks[i].arg);
        if (atomic_exchange(&w->reload, 0))
            do_reload(w);
        if (w->old)
            gen_reap(w);
        aurora_log_flush();
    }
}

aurora_worker *aurora_worker_new(int id, const aurora_vm_opts *opts, aurora_loader_fn loader,
                                 void *loader_arg, char *err, size_t errlen)
{
    aurora_worker *w = calloc(1, sizeof(*w));

    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->id = id;
    w->vm_opts = *opts;
    w->loader = loader;
    w->loader_arg = loader_arg;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&w->lock, NULL);
    if (w->epfd < 0 || w->evfd < 0 ||
        aurora_worker_watch(w, w->evfd, EPOLLIN, drain_evfd, NULL) != 0) {
        snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
        aurora_worker_free(&w);
        return NULL;
    }
    w->gen = gen_load(w, err, errlen);
    if (!w->gen) {
        aurora_worker_free(&w);
        return NULL;
    }
    return w;
}

void aurora_worker_free(aurora_worker **pw)
{
    aurora_worker *w = pw ? *pw : NULL;

    if (!w)
        return;
    aurora_worker_kill_tasks(w, "worker stopped");
    if (w->gen)
        gen_close(w->gen);
    while (w->old) {
        aurora_gen *g = w->old;
        w->old = g->next;
        gen_close(g);
    }
    while (w->free_tasks) {
        aurora_task *t = w->free_tasks;
        w->free_tasks = t->next;
        free(t);
    }
    free(w->watches);
    while (w->posts) {
        post *p = w->posts;
        w->posts = p->next;
        free(p);
    }
    free(w->heap);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->evfd >= 0)
        close(w->evfd);
    pthread_mutex_destroy(&w->lock);
    free(w);
    *pw = NULL;
}

/* The generation whose VM L (any coroutine of it) belongs to. */
static aurora_gen *gen_of(aurora_worker *w, lua_State *L)
{
    lua_State *main;

    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (w->loading && w->loading->L == main)
        return w->loading;
    if (w->gen && w->gen->L == main)
        return w->gen;
    for (aurora_gen *g = w->old; g; g = g->next)
        if (g->L == main)
            return g;
    return NULL;
}

static void sched_done(aurora_task *t, int status, int nres, const char *msg)
{
    sched *x = t->owner;

    (void)nres;
    x->running = 0;
    if (status != LUA_OK)
        aurora_log(AURORA_LOG_ERROR, "timer function failed", "error", msg, NULL);
    if (x->cancelled || !x->interval)
        sched_free(x->gen, x);
    else
        aurora_timer_start(x->gen->w, &x->timer, aurora_now_ms() + x->interval);
}

static void sched_fire(aurora_worker *w, void *arg)
{
    sched *x = arg;
    lua_State *L = x->gen->L;

    /* Run on the generation that scheduled it (its VM holds the function). */
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->fn_ref);
    x->running = 1;
    /* A timer function gets a generous deadline, so a runaway loop cannot hold the worker. */
    if (!task_start(w, x->gen, 0, aurora_now_ms() + TIMER_TASK_MS, sched_done, x)) {
        x->running = 0;
        aurora_timer_start(w, &x->timer, aurora_now_ms() + (x->interval ? x->interval : 1000));
    }
}

int aurora_worker_schedule(lua_State *L, int idx, uint64_t delay_ms, uint64_t interval_ms)
{
    aurora_worker *w = aurora_vm_worker(L);
    aurora_gen *g = w ? gen_of(w, L) : NULL;
    sched *x;

    if (!w)
        return 0; /* a VM without a worker (`aurora check`) loads scripts but runs no timers */
    if (!g)
        return luaL_error(L, "timers can only be started in a worker's VM");
    x = calloc(1, sizeof(*x));
    if (!x)
        return luaL_error(L, "not enough memory");
    lua_pushvalue(L, idx);
    x->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    x->gen = g;
    x->id = ++g->next_sched_id;
    x->interval = interval_ms;
    x->timer.fn = sched_fire;
    x->timer.arg = x;
    x->next = g->scheds;
    g->scheds = x;
    aurora_timer_start(w, &x->timer, aurora_now_ms() + delay_ms);
    return x->id;
}

int aurora_worker_unschedule(lua_State *L, int id)
{
    aurora_worker *w = aurora_vm_worker(L);
    aurora_gen *g = w ? gen_of(w, L) : NULL;

    for (sched *x = g ? g->scheds : NULL; x; x = x->next) {
        if (x->id != id)
            continue;
        if (x->running)
            x->cancelled = 1;
        else
            sched_free(g, x);
        return 1;
    }
    return 0;
}

int aurora_worker_id(const aurora_worker *w)
{
    return w->id;
}

lua_State *aurora_worker_vm(aurora_worker *w)
{
    return w->gen->L;
}

int aurora_worker_tasks(const aurora_worker *w)
{
    return w->ntasks;
}

void *aurora_worker_slot(aurora_worker *w, int slot)
{
    return w->slots[slot];
}

void aurora_worker_set_slot(aurora_worker *w, int slot, void *p)
{
    w->slots[slot] = p;
}
