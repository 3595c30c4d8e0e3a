/*
 * proc.h: child processes and loopback ports, for the test harness, tools and benchmarks
 * (starting `aurora serve` for an app under test, the simulator, real clients).
 */
#ifndef AURORA_PROC_H
#define AURORA_PROC_H

#include <sys/types.h>

/*
 * Starts argv[0] (searched in PATH) with argv, the current environment plus env_set ("NAME=value"
 * entries overriding same-named variables; NULL-terminated, may be NULL), and stdout/stderr
 * appended to the given files (NULL: inherited). Returns the pid, or -1 with *err set.
 */
pid_t aurora_proc_spawn(char *const argv[], char *const env_set[], const char *out_path,
                        const char *err_path, int *err);

/* Non-blocking check: returns 0 while running; 1 when it ended (*how = "exited" or "signaled",
 * *code = exit status or signal number); -1 if pid is not our child. */
int aurora_proc_poll(pid_t pid, const char **how, int *code);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int aurora_proc_free_port(void);

#endif
