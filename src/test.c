/*
 * test.c: `aurora test [FILES|DIRS]` and `aurora run FILE`. A test file is loaded once to list
 * its tests, then each test runs in a fresh worker (a fresh VM, event loop and HTTP client) as a
 * task, so tests can make real HTTP calls, sleep and start servers. The assertion library and
 * the server helpers are the embedded Lua module aurora.test (src/lua/test.lua). Prints one line
 * per test and ends with "N passed, N failed".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/http.h"
#include "aurora/log.h"
#include "aurora/test.h"
#include "aurora/vm.h"
#include "aurora/worker.h"

#define TEST_TIMEOUT_MS 120000
#define CLEANUP_TIMEOUT_MS 20000

typedef struct outcome {
    int done;
    int ok;
    int lenient;    /* `aurora run`: anything but an error or an explicit false is success */
    char *msg;
} outcome;

static int load_file(aurora_worker *w, lua_State *L, void *arg, char *err, size_t errlen)
{
    const char *file = arg;

    (void)w;
    if (luaL_loadfile(L, file) != LUA_OK || aurora_vm_pcall(L, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

static void on_done(aurora_task *t, int status, int nres, const char *msg)
{
    outcome *o = t->owner;

    o->done = 1;
    if (status == LUA_OK) {
        int base = lua_gettop(t->co) - nres + 1;
        if (o->lenient)
            o->ok = nres == 0 || !lua_isboolean(t->co, base) || lua_toboolean(t->co, base);
        else
            o->ok = nres >= 1 && lua_toboolean(t->co, base);
        if (nres >= 2 && lua_isstring(t->co, base + 1))
            o->msg = strdup(lua_tostring(t->co, base + 1));
    } else {
        o->ok = 0;
        o->msg = strdup(t->expired ? "timed out" : msg ? msg : "error");
    }
}

/* Runs the function aurora.test.<fn>(arg) as a task on w and waits for it. */
static void run_task(aurora_worker *w, const char *fn, lua_Integer arg, uint64_t timeout_ms,
                     outcome *o)
{
    lua_State *L = aurora_worker_vm(w);

    memset(o, 0, sizeof(*o));
    lua_getglobal(L, "require");
    lua_pushliteral(L, "aurora.test");
    if (aurora_vm_pcall(L, 1, 1) != LUA_OK) {
        o->done = 1;
        o->msg = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lua_pushinteger(L, arg);
    if (!aurora_task_start(w, 1, aurora_now_ms() + timeout_ms, on_done, o)) {
        o->done = 1;
        o->msg = strdup("cannot start a task");
        return;
    }
    aurora_worker_run(w, &o->done);
}

/* Tests also find the Aurora app's modules (lua/aurora/...), from the directory named by
 * AURORA_APP or ./lua when it holds app.lua. */
static const char *lib_dir(void)
{
    const char *a = getenv("AURORA_APP");
    struct stat st;

    if (a && *a)
        return a;
    return stat("lua/app.lua", &st) == 0 ? "lua" : NULL;
}

static aurora_worker *make_worker(const char *file, const char *app_dir, char *err, size_t n)
{
    aurora_vm_opts vo = {.app_dir = app_dir, .lib_dir = lib_dir()};
    aurora_worker *w = aurora_worker_new(1, &vo, load_file, (void *)file, err, n);

    if (w && aurora_http_attach(w) != 0) {
        snprintf(err, n, "cannot attach the HTTP client");
        aurora_worker_free(&w);
    }
    return w;
}

static void drop_worker(aurora_worker **w)
{
    if (!*w)
        return;
    aurora_worker_kill_tasks(*w, "test finished");
    aurora_http_detach(*w);
    aurora_worker_free(w);
}

/* The directory of a file ("tests/x_test.lua" -> "tests"), for require of helpers beside it. */
static void dir_of(const char *file, char *out, size_t n)
{
    const char *slash = strrchr(file, '/');

    if (!slash)
        snprintf(out, n, ".");
    else
        snprintf(out, n, "%.*s", (int)(slash - file), file);
}

static void run_file(const char *file, int *passed, int *failed)
{
    char err[2048], dir[1024];
    aurora_worker *w;
    lua_State *L;
    int ntests;
    char **names;

    dir_of(file, dir, sizeof(dir));
    w = make_worker(file, dir, err, sizeof(err));
    if (!w) {
        printf("FAIL %s: cannot load: %s\n", file, err);
        (*failed)++;
        return;
    }
    L = aurora_worker_vm(w);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "aurora.test");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "_names");
    lua_call(L, 0, 1);
    ntests = (int)lua_rawlen(L, -1);
    names = calloc((size_t)ntests + 1, sizeof(*names));
    for (int i = 0; names && i < ntests; i++) {
        lua_rawgeti(L, -1, i + 1);
        names[i] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    drop_worker(&w);
    if (ntests == 0)
        printf("FAIL %s: no tests defined\n", file), (*failed)++;
    for (int i = 0; names && i < ntests; i++) {
        outcome o, c;
        w = make_worker(file, dir, err, sizeof(err));
        if (!w) {
            printf("FAIL %s: %s: cannot load: %s\n", file, names[i], err);
            (*failed)++;
            continue;
        }
        run_task(w, "_run", i + 1, TEST_TIMEOUT_MS, &o);
        aurora_worker_kill_tasks(w, "test finished");
        run_task(w, "_cleanup", 0, CLEANUP_TIMEOUT_MS, &c);
        if (o.ok) {
            printf("ok   %s: %s\n", file, names[i]);
            (*passed)++;
        } else {
            printf("FAIL %s: %s\n     %s\n", file, names[i], o.msg ? o.msg : "(no message)");
            (*failed)++;
        }
        fflush(stdout);
        free(o.msg);
        free(c.msg);
        drop_worker(&w);
        free(names[i]);
    }
    free(names);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *path, int *passed, int *failed)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char **files = NULL;
    size_t n = 0;

    if (!d) {
        printf("FAIL %s: cannot open directory\n", path);
        (*failed)++;
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        char **p;
        if (l < 9 || strcmp(e->d_name + l - 9, "_test.lua") != 0)
            continue;
        p = realloc(files, (n + 1) * sizeof(*files));
        if (!p)
            break;
        files = p;
        if (asprintf(&files[n], "%s/%s", path, e->d_name) < 0)
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(files, n, sizeof(*files), cmp_str);
    for (size_t i = 0; i < n; i++) {
        run_file(files[i], passed, failed);
        free(files[i]);
    }
    free(files);
}

int aurora_test_main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    struct stat st;

    if (argc == 0) {
        static char *def[] = {"tests"};
        argv = def;
        argc = 1;
    }
    for (int i = 0; i < argc; i++) {
        if (stat(argv[i], &st) != 0) {
            printf("FAIL %s: no such file or directory\n", argv[i]);
            failed++;
        } else if (S_ISDIR(st.st_mode)) {
            run_dir(argv[i], &passed, &failed);
        } else {
            run_file(argv[i], &passed, &failed);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* `aurora run FILE [ARGS]`: runs FILE as a task (it may use aurora.http, sleep, timers); the
 * script gets ARGS as `...`. Exits 0 unless the script raised or returned false. */
static int run_args_argc;
static char **run_args_argv;

static int load_script(aurora_worker *w, lua_State *L, void *arg, char *err, size_t errlen)
{
    (void)w;
    if (luaL_loadfile(L, arg) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "aurora.run.main");
    return 0;
}

int aurora_run_main(const char *file, int argc, char **argv)
{
    char err[2048], dir[1024];
    aurora_vm_opts vo;
    aurora_worker *w;
    outcome o;
    lua_State *L;

    dir_of(file, dir, sizeof(dir));
    vo = (aurora_vm_opts){.app_dir = dir, .lib_dir = lib_dir()};
    run_args_argc = argc;
    run_args_argv = argv;
    w = aurora_worker_new(1, &vo, load_script, (void *)file, err, sizeof(err));
    if (!w || aurora_http_attach(w) != 0) {
        fprintf(stderr, "aurora run: %s\n", w ? "cannot attach the HTTP client" : err);
        aurora_worker_free(&w);
        return 1;
    }
    L = aurora_worker_vm(w);
    lua_getfield(L, LUA_REGISTRYINDEX, "aurora.run.main");
    for (int i = 0; i < run_args_argc; i++)
        lua_pushstring(L, run_args_argv[i]);
    memset(&o, 0, sizeof(o));
    o.lenient = 1;
    if (aurora_task_start(w, argc, 0, on_done, &o))
        aurora_worker_run(w, &o.done);
    /* Background timers the script left behind do not keep the process alive. */
    if (!o.ok && o.msg)
        fprintf(stderr, "aurora run: %s\n", o.msg);
    drop_worker(&w);
    aurora_log_flush();
    free(o.msg);
    return o.ok ? 0 : 1;
}
