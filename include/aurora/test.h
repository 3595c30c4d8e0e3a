/*
 * test.h: the script test runner (`aurora test`) and script runner (`aurora run`).
 */
#ifndef AURORA_TEST_H
#define AURORA_TEST_H

/* Runs the *_test.lua files named (files, or directories scanned for them; default "tests").
 * Prints a line per test and "N passed, N failed". Returns the process exit status. */
int aurora_test_main(int argc, char **argv);

/* Runs the script file as a task with argv as its arguments (`...`). Returns the exit status:
 * 1 when the script raised an error or returned false, else 0. */
int aurora_run_main(const char *file, int argc, char **argv);

#endif
