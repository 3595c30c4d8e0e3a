/*
 * main.c: the `aurora` command line: serve | test | run | check | reload | version. Reads the
 * configuration from the environment (after loading a .env file that never overrides a real
 * variable) and the command-line flags, which win over both.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/env.h"
#include "aurora/http.h"
#include "aurora/log.h"
#include "aurora/server.h"
#include "aurora/test.h"
#include "aurora/vm.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aurora <command> [options]\n"
            "  serve [--app DIR] [--listen HOST:PORT] [--workers N]\n"
            "        [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--listeners FILE]\n"
            "  test [FILES|DIRS]      run *_test.lua files (default: tests)\n"
            "  run FILE [ARGS]        run a Lua script as a task\n"
            "  check [--app DIR]      compile the app's scripts without serving\n"
            "  reload                 make the running server reload its scripts (SIGHUP)\n"
            "  version\n"
            "Configuration comes from the environment and .env; see README.md.\n");
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v && *v ? v : def;
}

static long env_long(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (!v || !*v)
        return def;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max) {
        fprintf(stderr, "aurora: %s must be an integer between %ld and %ld (got \"%s\")\n", name,
                min, max, v);
        exit(2);
    }
    return n;
}

static const char *default_app(void)
{
    const char *a = getenv("AURORA_APP");
    struct stat st;

    if (a && *a)
        return a;
    if (stat("lua/app.lua", &st) == 0)
        return "lua";
    return AURORA_SHARE_DIR "/lua";
}

static void pid_file_path(char *out, size_t n)
{
    const char *pf = getenv("AURORA_PID_FILE");

    if (pf && *pf)
        snprintf(out, n, "%s", pf);
    else
        snprintf(out, n, "%s/aurora.pid", env_or("AURORA_DATA_DIR", "./data"));
}

static int cmd_serve(int argc, char **argv)
{
    aurora_server_opts o;
    char host[256], pidf[4096];
    const char *listen_at = env_or("AURORA_LISTEN", "127.0.0.1:5000");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *data = env_or("AURORA_DATA_DIR", "./data");

    memset(&o, 0, sizeof(o));
    o.app_dir = default_app();
    o.workers = (int)env_long("AURORA_WORKERS", cores > 0 ? cores : 2, 1, 256);
    o.body_max = (size_t)env_long("AURORA_BODY_MAX", 1024 * 1024, 1, 1024L * 1024 * 1024);
    o.header_max = (size_t)env_long("AURORA_HEADER_MAX", 16 * 1024, 4096, 1024 * 1024);
    o.max_connections = (int)env_long("AURORA_MAX_CONNECTIONS", 2048, 1, 1000000);
    o.request_timeout_ms = (int)(env_long("AURORA_REQUEST_TIMEOUT", 30, 1, 86400) * 1000);
    o.idle_timeout_s = (int)env_long("AURORA_IDLE_TIMEOUT", 60, 1, 86400);
    o.drain_timeout_ms = (int)(env_long("AURORA_DRAIN_TIMEOUT", 15, 0, 3600) * 1000);
    o.vm_mem_limit = (size_t)env_long("AURORA_VM_MEMORY_MB", 512, 0, 1 << 20) * 1024 * 1024;
    o.tls_cert_file = getenv("AURORA_TLS_CERT");
    o.tls_key_file = getenv("AURORA_TLS_KEY");
    o.tls_client_ca_file = getenv("AURORA_TLS_CLIENT_CA");
    o.listeners_file = getenv("AURORA_LISTENERS");
    o.lib_dir = getenv("AURORA_LIB_DIR");
    o.allow_remote = getenv("AURORA_API_TOKEN") && *getenv("AURORA_API_TOKEN");
    for (int i = 0; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "aurora serve: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--app") == 0)
            o.app_dir = v;
        else if (strcmp(a, "--listen") == 0)
            listen_at = v;
        else if (strcmp(a, "--workers") == 0)
            o.workers = atoi(v);
        else if (strcmp(a, "--tls-cert") == 0)
            o.tls_cert_file = v;
        else if (strcmp(a, "--tls-key") == 0)
            o.tls_key_file = v;
        else if (strcmp(a, "--tls-client-ca") == 0)
            o.tls_client_ca_file = v;
        else if (strcmp(a, "--listeners") == 0)
            o.listeners_file = v;
        else {
            fprintf(stderr, "aurora serve: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.workers < 1 || o.workers > 256) {
        fprintf(stderr, "aurora serve: --workers must be between 1 and 256\n");
        return 2;
    }
    if (aurora_server_parse_listen(listen_at, host, sizeof(host), &o.port) != 0) {
        fprintf(stderr, "aurora serve: cannot parse listen address \"%s\" (HOST:PORT)\n",
                listen_at);
        return 2;
    }
    if (!o.tls_cert_file != !o.tls_key_file || (o.tls_client_ca_file && !o.tls_cert_file)) {
        fprintf(stderr, "aurora serve: TLS needs both --tls-cert and --tls-key\n");
        return 2;
    }
    o.host = host;
    mkdir(data, 0700);
    pid_file_path(pidf, sizeof(pidf));
    o.pid_file = pidf;
    return aurora_server_run(&o);
}

/* Compiles every .lua file under dir (syntax only). Returns the number of failures. */
static int compile_tree(lua_State *L, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int bad = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            bad += compile_tree(L, path);
        } else if (l > 4 && strcmp(e->d_name + l - 4, ".lua") == 0) {
            if (luaL_loadfile(L, path) != LUA_OK) {
                fprintf(stderr, "%s\n", lua_tostring(L, -1));
                bad++;
            }
            lua_pop(L, 1);
        }
    }
    closedir(d);
    return bad;
}

static int cmd_check(int argc, char **argv)
{
    const char *app = default_app();
    aurora_vm_opts vo;
    lua_State *L;
    char err[2048];
    int bad;

    if (argc == 2 && strcmp(argv[0], "--app") == 0)
        app = argv[1];
    else if (argc != 0) {
        usage(stderr);
        return 2;
    }
    vo = (aurora_vm_opts){.app_dir = app};
    L = aurora_vm_new(&vo);
    if (!L)
        return 1;
    bad = compile_tree(L, app);
    if (!bad && aurora_app_load(L, app, NULL, -1, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        bad++;
    }
    aurora_vm_close(&L);
    if (bad)
        return 1;
    printf("%s: ok\n", app);
    return 0;
}

static int cmd_reload(void)
{
    char path[4096];
    FILE *f;
    int pid = 0;

    pid_file_path(path, sizeof(path));
    f = fopen(path, "r");
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "aurora reload: no running server (cannot read %s)\n", path);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    if (kill(pid, SIGHUP) != 0) {
        fprintf(stderr, "aurora reload: cannot signal %d: %s\n", pid, strerror(errno));
        return 1;
    }
    printf("reload requested (pid %d)\n", pid);
    return 0;
}

int main(int argc, char **argv)
{
    char err[512];
    const char *envfile = env_or("AURORA_ENV_FILE", ".env");
    int rc, lvl;

    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    rc = aurora_env_load_file(envfile, err, sizeof(err));
    if (rc && rc != AURORA_E_NOT_FOUND) {
        fprintf(stderr, "aurora: %s: %s\n", envfile, err);
        return 2;
    }
    lvl = aurora_log_parse_level(env_or("AURORA_LOG_LEVEL", "info"));
    aurora_log_init(lvl < 0 ? AURORA_LOG_INFO : lvl, getenv("AURORA_LOG_REDACT"));
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("aurora %s (%s, %s)\n", AURORA_VERSION, LUA_RELEASE, curl_version());
        return 0;
    }
    if (strcmp(argv[1], "reload") == 0)
        return cmd_reload();
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (aurora_http_global_init(getenv("AURORA_CA_BUNDLE"), err, sizeof(err)) != 0) {
        fprintf(stderr, "aurora: %s\n", err);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        rc = cmd_serve(argc - 2, argv + 2);
    else if (strcmp(argv[1], "test") == 0)
        rc = aurora_test_main(argc - 2, argv + 2);
    else if (strcmp(argv[1], "run") == 0 && argc >= 3)
        rc = aurora_run_main(argv[2], argc - 3, argv + 3);
    else if (strcmp(argv[1], "check") == 0)
        rc = cmd_check(argc - 2, argv + 2);
    else {
        usage(stderr);
        rc = 2;
    }
    aurora_http_global_cleanup();
    aurora_log_flush();
    return rc;
}
