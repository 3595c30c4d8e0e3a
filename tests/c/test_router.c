/*
 * test_router.c: route patterns and path matching, and percent-decoding, without Lua: literal
 * segments beat captures, 404 and 405 (with the allowed methods), raw captures, empty segments,
 * the patterns the router must refuse, and aurora_url_decode on good and malformed input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/router.h"
#include "check.h"

static char err[256];

/* Adds a route; returns what aurora_router_add returned (err holds its message). */
static int add(aurora_router *r, const char *method, const char *pattern, int handler)
{
    err[0] = '\0';
    return aurora_router_add(r, method, pattern, handler, err, sizeof(err));
}

static int match(const aurora_router *r, const char *method, const char *path,
                 aurora_route_match *m)
{
    memset(m, 0, sizeof(*m));
    return aurora_router_match(r, method, path, strlen(path), m);
}

/* The value of capture name in m as a NUL-terminated string (static storage), or NULL. */
static const char *cap(const aurora_route_match *m, const char *name)
{
    static char out[256];

    for (int i = 0; i < m->ncaps; i++) {
        if (strcmp(m->cap_name[i], name) == 0) {
            snprintf(out, sizeof(out), "%.*s", (int)m->cap_len[i], m->cap_val[i]);
            return out;
        }
    }
    return NULL;
}

TEST(a_literal_segment_beats_a_capture_whatever_the_order_of_adding)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int ok = r != NULL;

    CHECK(ok);
    ok = add(r, "GET", "/items/{id}", 1) == 0 && add(r, "GET", "/items/special", 2) == 0 &&
         add(r, "GET", "/{kind}/special/{x}", 3) == 0 && add(r, "GET", "/items/{a}/{b}", 4) == 0;
    if (ok) {
        ok = match(r, "GET", "/items/special", &m) == 200 && m.handler == 2 && m.ncaps == 0 &&
             strcmp(m.pattern, "/items/special") == 0;
        ok = ok && match(r, "GET", "/items/42", &m) == 200 && m.handler == 1 &&
             strcmp(m.pattern, "/items/{id}") == 0 && cap(&m, "id") &&
             strcmp(cap(&m, "id"), "42") == 0;
        /* An earlier literal segment weighs more than a later one. */
        ok = ok && match(r, "GET", "/items/special/7", &m) == 200 && m.handler == 4;
        ok = ok && match(r, "GET", "/users/special/7", &m) == 200 && m.handler == 3;
    }
    aurora_router_free(&r);
    CHECK(ok);
    CHECK(r == NULL);
}

TEST(an_unknown_path_is_404)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int a, b, c, d;

    CHECK(r != NULL);
    add(r, "GET", "/items/{id}", 1);
    a = match(r, "GET", "/nowhere", &m);
    b = match(r, "GET", "/items", &m);
    c = match(r, "GET", "/items/1/more", &m);
    d = match(r, "GET", "/", &m);
    aurora_router_free(&r);
    CHECK_EQ_INT(a, 404);
    CHECK_EQ_INT(b, 404);
    CHECK_EQ_INT(c, 404);
    CHECK_EQ_INT(d, 404);
}

TEST(a_known_path_with_another_method_is_405_listing_the_allowed_methods_sorted)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int rc;
    char allow[sizeof(m.allow)];

    CHECK(r != NULL);
    add(r, "PATCH", "/items/{id}", 1);
    add(r, "GET", "/items/{id}", 2);
    add(r, "DELETE", "/items/{id}", 3);
    add(r, "POST", "/items", 4);
    rc = match(r, "PUT", "/items/7", &m);
    snprintf(allow, sizeof(allow), "%s", m.allow);
    aurora_router_free(&r);
    CHECK_EQ_INT(rc, 405);
    /* Sorted, so the Allow header does not depend on the order of the app's route table. */
    CHECK_EQ_STR(allow, "DELETE, GET, PATCH");
}

/* The most specific pattern owns the path: a POST-only literal route makes GET a 405 there,
 * even though a GET capture route would match the same path. */
TEST(the_most_specific_pattern_decides_which_methods_a_path_allows)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int lit, other;
    char allow[sizeof(m.allow)];

    CHECK(r != NULL);
    add(r, "POST", "/x/y", 1);
    add(r, "GET", "/x/{z}", 2);
    lit = match(r, "GET", "/x/y", &m);
    snprintf(allow, sizeof(allow), "%s", m.allow);
    other = match(r, "GET", "/x/q", &m);
    aurora_router_free(&r);
    CHECK_EQ_INT(lit, 405);
    CHECK_EQ_STR(allow, "POST");
    CHECK_EQ_INT(other, 200);
}

TEST(head_is_served_by_the_get_route_when_there_is_no_head_route)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int rc, handler;

    CHECK(r != NULL);
    add(r, "GET", "/status", 5);
    rc = match(r, "HEAD", "/status", &m);
    handler = m.handler;
    aurora_router_free(&r);
    CHECK_EQ_INT(rc, 200);
    CHECK_EQ_INT(handler, 5);
}

TEST(captures_are_returned_raw_still_percent_encoded)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int rc;
    char rg[64] = "", name[64] = "";

    CHECK(r != NULL);
    add(r, "GET", "/clusters/{rg}/{name}", 1);
    rc = match(r, "GET", "/clusters/my%20rg/a%2Fb", &m);
    if (rc == 200 && cap(&m, "rg") && strlen(cap(&m, "rg")) < sizeof(rg)) {
        snprintf(rg, sizeof(rg), "%s", cap(&m, "rg"));
        snprintf(name, sizeof(name), "%s", cap(&m, "name") ? cap(&m, "name") : "");
    }
    aurora_router_free(&r);
    CHECK_EQ_INT(rc, 200);
    CHECK_EQ_STR(rg, "my%20rg");
    CHECK_EQ_STR(name, "a%2Fb");
}

TEST(empty_path_segments_are_ignored)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int a, b, c, ha, hb, hc;

    CHECK(r != NULL);
    add(r, "GET", "/a/b", 1);
    add(r, "GET", "//x//{y}//", 2);
    a = match(r, "GET", "//a//b/", &m);
    ha = m.handler;
    b = match(r, "GET", "/a/b", &m);
    hb = m.handler;
    c = match(r, "GET", "/x/1", &m);
    hc = m.handler;
    aurora_router_free(&r);
    CHECK_EQ_INT(a, 200);
    CHECK_EQ_INT(ha, 1);
    CHECK_EQ_INT(b, 200);
    CHECK_EQ_INT(hb, 1);
    CHECK_EQ_INT(c, 200);
    CHECK_EQ_INT(hc, 2);
}

TEST(malformed_patterns_and_methods_are_rejected_with_a_message)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int no_slash, empty_cap, partial1, partial2, partial3, digit, bad_char, lower, empty_method,
        good, dup, after;
    char dup_msg[sizeof(err)];

    CHECK(r != NULL);
    no_slash = add(r, "GET", "items", 1);
    empty_cap = add(r, "GET", "/items/{}", 1);
    partial1 = add(r, "GET", "/items/x{id}", 1);
    partial2 = add(r, "GET", "/items/{id}.json", 1);
    partial3 = add(r, "GET", "/items/{id", 1);
    digit = add(r, "GET", "/items/{1id}", 1);
    bad_char = add(r, "GET", "/items/{i-d}", 1);
    lower = add(r, "get", "/items", 1);
    empty_method = add(r, "", "/items", 1);
    good = add(r, "GET", "/items/{id}", 1);
    dup = add(r, "GET", "/items/{id}", 2);
    snprintf(dup_msg, sizeof(dup_msg), "%s", err);
    /* The failed adds left nothing behind: only the good route matches. */
    after = match(r, "GET", "/items/x7", &m);
    aurora_router_free(&r);
    CHECK_EQ_INT(no_slash, AURORA_E_INVALID);
    CHECK_EQ_INT(empty_cap, AURORA_E_INVALID);
    CHECK_EQ_INT(partial1, AURORA_E_INVALID);
    CHECK_EQ_INT(partial2, AURORA_E_INVALID);
    CHECK_EQ_INT(partial3, AURORA_E_INVALID);
    CHECK_EQ_INT(digit, AURORA_E_INVALID);
    CHECK_EQ_INT(bad_char, AURORA_E_INVALID);
    CHECK_EQ_INT(lower, AURORA_E_INVALID);
    CHECK_EQ_INT(empty_method, AURORA_E_INVALID);
    CHECK_EQ_INT(good, 0);
    CHECK_EQ_INT(dup, AURORA_E_INVALID);
    CHECK(strstr(dup_msg, "duplicate") != NULL);
    CHECK_EQ_INT(after, 200);
}

/*
 * "/items/{id}" and "/items/{name}" (or "/a/b" and "/a/b/") match exactly the same paths. If
 * both were accepted, which handler runs would depend on the order in which the app's route
 * table is walked, and Lua's table order is not something an operator controls.
 */
TEST(a_pattern_equivalent_to_an_existing_route_is_rejected_as_a_duplicate)
{
    aurora_router *r = aurora_router_new();
    int first, renamed, trailing, other_method;

    CHECK(r != NULL);
    first = add(r, "GET", "/items/{id}", 1);
    renamed = add(r, "GET", "/items/{name}", 2);
    trailing = add(r, "GET", "/items/{id}/", 3);
    other_method = add(r, "PUT", "/items/{name}", 4);
    aurora_router_free(&r);
    CHECK_EQ_INT(first, 0);
    CHECK_EQ_INT(other_method, 0);
    CHECK_EQ_INT(renamed, AURORA_E_INVALID);
    CHECK_EQ_INT(trailing, AURORA_E_INVALID);
}

/* Two captures with one name would leave only one of the values in req.params. */
TEST(a_pattern_naming_the_same_capture_twice_is_rejected)
{
    aurora_router *r = aurora_router_new();
    int rc;

    CHECK(r != NULL);
    rc = add(r, "GET", "/pairs/{id}/{id}", 1);
    aurora_router_free(&r);
    CHECK_EQ_INT(rc, AURORA_E_INVALID);
}

TEST(a_path_with_too_many_segments_is_404_and_such_a_pattern_is_rejected)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    char longp[4 * (AURORA_ROUTER_MAX_SEGS + 2)] = "";
    int add_rc, match_rc;

    CHECK(r != NULL);
    for (int i = 0; i <= AURORA_ROUTER_MAX_SEGS; i++)
        strcat(longp, "/a");
    add(r, "GET", "/a", 1);
    add_rc = add(r, "GET", longp, 2);
    match_rc = match(r, "GET", longp, &m);
    aurora_router_free(&r);
    CHECK_EQ_INT(add_rc, AURORA_E_INVALID);
    CHECK_EQ_INT(match_rc, 404);
}

TEST(freeing_a_null_router_is_harmless)
{
    aurora_router *r = NULL;

    aurora_router_free(&r);
    aurora_router_free(NULL);
    CHECK(r == NULL);
}

TEST(url_decode_turns_good_escapes_into_bytes)
{
    char out[64];
    long n;

    n = aurora_url_decode("a%20b%2Fc%41%7e%7E", 18, out, 0);
    CHECK_EQ_INT(n, 8);
    CHECK_EQ_STR(out, "a b/cA~~");
    n = aurora_url_decode("%00x", 4, out, 0);
    CHECK_EQ_INT(n, 2);
    CHECK(out[0] == '\0' && out[1] == 'x');
    n = aurora_url_decode("", 0, out, 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_STR(out, "");
}

TEST(url_decode_turns_plus_into_space_only_when_asked)
{
    char out[64];

    CHECK_EQ_INT(aurora_url_decode("a+b%2B", 6, out, 1), 4);
    CHECK_EQ_STR(out, "a b+");
    CHECK_EQ_INT(aurora_url_decode("a+b%2B", 6, out, 0), 4);
    CHECK_EQ_STR(out, "a+b+");
}

TEST(url_decode_rejects_malformed_and_truncated_escapes)
{
    char out[64];

    CHECK_EQ_INT(aurora_url_decode("%G1", 3, out, 0), -1);
    CHECK_EQ_INT(aurora_url_decode("%1G", 3, out, 0), -1);
    CHECK_EQ_INT(aurora_url_decode("%4", 2, out, 0), -1);
    CHECK_EQ_INT(aurora_url_decode("ab%", 3, out, 0), -1);
    /* The length bounds the input: "%41" cut to "%4" is truncated even though the byte after
     * it is a hex digit. */
    CHECK_EQ_INT(aurora_url_decode("%41", 2, out, 0), -1);
    CHECK_EQ_INT(aurora_url_decode("%41", 3, out, 0), 1);
    CHECK_EQ_STR(out, "A");
}

TEST(a_case_insensitive_router_matches_literals_in_any_case)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    const char *p = "/subscriptions/s1/RESOURCEGROUPS/rg/providers";
    int rc, dup;

    CHECK(r != NULL);
    aurora_router_set_nocase(r, 1);
    CHECK_EQ_INT(add(r, "GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers", 7), 0);
    dup = add(r, "GET", "/subscriptions/{s}/resourcegroups/{g}/providers", 8);
    rc = aurora_router_match(r, "GET", p, strlen(p), &m);
    aurora_router_free(&r);
    CHECK_EQ_INT(dup, AURORA_E_INVALID);
    CHECK_EQ_INT(rc, 200);
    CHECK_EQ_INT(m.handler, 7);
}

TEST(a_default_router_is_case_sensitive)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int rc;

    CHECK(r != NULL);
    CHECK_EQ_INT(add(r, "GET", "/Items", 1), 0);
    rc = aurora_router_match(r, "GET", "/items", 6, &m);
    aurora_router_free(&r);
    CHECK_EQ_INT(rc, 404);
}

TEST(an_explicit_head_route_wins_over_get_and_get_serves_head_otherwise)
{
    aurora_router *r = aurora_router_new();
    aurora_route_match m;
    int a, b;

    CHECK(r != NULL);
    CHECK_EQ_INT(add(r, "GET", "/x", 1), 0);
    CHECK_EQ_INT(add(r, "HEAD", "/x", 2), 0);
    CHECK_EQ_INT(add(r, "GET", "/y", 3), 0);
    a = aurora_router_match(r, "HEAD", "/x", 2, &m) == 200 ? m.handler : -1;
    b = aurora_router_match(r, "HEAD", "/y", 2, &m) == 200 ? m.handler : -1;
    aurora_router_free(&r);
    CHECK_EQ_INT(a, 2);
    CHECK_EQ_INT(b, 3);
}

int main(void)
{
    RUN(an_explicit_head_route_wins_over_get_and_get_serves_head_otherwise);
    RUN(a_case_insensitive_router_matches_literals_in_any_case);
    RUN(a_default_router_is_case_sensitive);
    RUN(a_literal_segment_beats_a_capture_whatever_the_order_of_adding);
    RUN(an_unknown_path_is_404);
    RUN(a_known_path_with_another_method_is_405_listing_the_allowed_methods_sorted);
    RUN(the_most_specific_pattern_decides_which_methods_a_path_allows);
    RUN(head_is_served_by_the_get_route_when_there_is_no_head_route);
    RUN(captures_are_returned_raw_still_percent_encoded);
    RUN(empty_path_segments_are_ignored);
    RUN(malformed_patterns_and_methods_are_rejected_with_a_message);
    RUN(a_pattern_equivalent_to_an_existing_route_is_rejected_as_a_duplicate);
    RUN(a_pattern_naming_the_same_capture_twice_is_rejected);
    RUN(a_path_with_too_many_segments_is_404_and_such_a_pattern_is_rejected);
    RUN(freeing_a_null_router_is_harmless);
    RUN(url_decode_turns_good_escapes_into_bytes);
    RUN(url_decode_turns_plus_into_space_only_when_asked);
    RUN(url_decode_rejects_malformed_and_truncated_escapes);
    return check_summary();
}
