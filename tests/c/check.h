/*
 * check.h: the tiny harness of the C unit tests. A test file defines TEST(name) functions, lists
 * them in main with RUN(name), and ends with `return check_summary();`, which prints
 * "N passed, N failed". A failed CHECK ends the current test and prints file:line.
 */
#ifndef AURORA_CHECK_H
#define AURORA_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_cur_failed;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                               \
            check_cur_failed = 1;                                                                \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                       \
    do {                                                                                         \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                          \
        if (check_a_ != check_b_) {                                                              \
            printf("FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b,          \
                   check_a_, check_b_);                                                          \
            check_cur_failed = 1;                                                                \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                       \
    do {                                                                                         \
        const char *check_a_ = (a), *check_b_ = (b);                                             \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                         \
            printf("FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__, #a, #b,      \
                   check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");              \
            check_cur_failed = 1;                                                                \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define RUN(name)                                                                                \
    do {                                                                                         \
        check_cur_failed = 0;                                                                    \
        name();                                                                                  \
        if (check_cur_failed)                                                                    \
            check_failed++;                                                                      \
        else {                                                                                   \
            check_passed++;                                                                      \
            printf("ok   %s\n", #name);                                                          \
        }                                                                                        \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
