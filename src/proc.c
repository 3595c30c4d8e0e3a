/*
 * proc.c: spawning and watching child processes, finding free loopback ports (see proc.h).
 * posix_spawnp only: no fork of a multi-threaded process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/proc.h"

extern char **environ;

static int overridden(const char *entry, char *const env_set[])
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);

    for (int i = 0; env_set && env_set[i]; i++)
        if (strncmp(env_set[i], entry, n) == 0 && env_set[i][n] == '=')
            return 1;
    return 0;
}

pid_t aurora_proc_spawn(char *const argv[], char *const env_set[], const char *out_path,
                        const char *err_path, int *err)
{
    posix_spawn_file_actions_t fa;
    size_t n = 0, k = 0;
    char **envp;
    pid_t pid = -1;
    int rc;

    for (char **e = environ; *e; e++)
        n++;
    for (int i = 0; env_set && env_set[i]; i++)
        n++;
    envp = calloc(n + 1, sizeof(*envp));
    if (!envp) {
        *err = AURORA_E_NOMEM;
        return -1;
    }
    for (char **e = environ; *e; e++)
        if (!overridden(*e, env_set))
            envp[k++] = *e;
    for (int i = 0; env_set && env_set[i]; i++)
        envp[k++] = env_set[i];
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (err_path)
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc != 0) {
        *err = rc == ENOENT ? AURORA_E_NOT_FOUND : rc == EACCES ? AURORA_E_DENIED : AURORA_E_IO;
        return -1;
    }
    return pid;
}

int aurora_proc_poll(pid_t pid, const char **how, int *code)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);

    if (r == 0)
        return 0;
    if (r < 0)
        return -1;
    if (WIFSIGNALED(st)) {
        *how = "signaled";
        *code = WTERMSIG(st);
    } else {
        *how = "exited";
        *code = WEXITSTATUS(st);
    }
    return 1;
}

int aurora_proc_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}
