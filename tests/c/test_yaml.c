/*
 * test_yaml.c: unit tests of the YAML loader (src/yaml.c) without Lua: the core schema, block
 * and flow collections, multi-document streams, anchors and aliases, every limit (input size,
 * depth, nodes, scalar length, expanded bytes), a billion-laughs bomb, duplicate and
 * non-scalar keys, and syntax errors with their line and column.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/yaml.h"
#include "check.h"

static char err[256];

/* Loads s with the default limits; returns the error code. */
static int load(const char *s, aurora_yaml_doc **d)
{
    err[0] = '\0';
    return aurora_yaml_load(s, strlen(s), NULL, d, err, sizeof(err));
}

/* The root of the only document of s, NULL on failure; the caller frees *d. */
static const aurora_yaml_node *root(const char *s, aurora_yaml_doc **d)
{
    if (load(s, d) || (*d)->ndocs != 1)
        return NULL;
    return (*d)->docs[0];
}

TEST(plain_scalars_follow_the_core_schema)
{
    static const struct {
        const char *text;
        aurora_yaml_type type;
    } cases[] = {
        {"~", AURORA_YAML_NULL},
        {"null", AURORA_YAML_NULL},
        {"NULL", AURORA_YAML_NULL},
        {"", AURORA_YAML_NULL},
        {"true", AURORA_YAML_BOOL},
        {"False", AURORA_YAML_BOOL},
        {"42", AURORA_YAML_INT},
        {"-7", AURORA_YAML_INT},
        {"0x1F", AURORA_YAML_INT},
        {"0o17", AURORA_YAML_INT},
        {"1.5", AURORA_YAML_FLOAT},
        {"-.5e3", AURORA_YAML_FLOAT},
        {".inf", AURORA_YAML_FLOAT},
        {".NaN", AURORA_YAML_FLOAT},
        {"yes", AURORA_YAML_STR},
        {"on", AURORA_YAML_STR},
        {"0x", AURORA_YAML_STR},
        {"1e", AURORA_YAML_STR},
        {"10.0.0.1", AURORA_YAML_STR},
        {"0xZZ", AURORA_YAML_STR},
        {"nulls", AURORA_YAML_STR},
        {"99999999999999999999", AURORA_YAML_FLOAT},
        {"0xFFFFFFFFFFFFFFFFFF", AURORA_YAML_STR},
    };
    char doc[128];
    size_t i;

    for (i = 0; i < AURORA_COUNT(cases); i++) {
        aurora_yaml_doc *d = NULL;
        const aurora_yaml_node *r;

        snprintf(doc, sizeof(doc), "v: %s\n", cases[i].text);
        r = root(doc, &d);
        CHECK(r);
        if (aurora_yaml_get(r, "v")->type != cases[i].type)
            printf("  case %s\n", cases[i].text);
        CHECK_EQ_INT(aurora_yaml_get(r, "v")->type, cases[i].type);
        aurora_yaml_free(&d);
    }
}

TEST(scalar_values_are_parsed)
{
    aurora_yaml_doc *d = NULL;
    const aurora_yaml_node *r = root("a: 0x10\nb: -12\nc: 2.5\nd: -.inf\ne: TRUE\nf: 0o10\n", &d);

    CHECK(r);
    CHECK_EQ_INT(aurora_yaml_get(r, "a")->v.i, 16);
    CHECK_EQ_INT(aurora_yaml_get(r, "b")->v.i, -12);
    CHECK(aurora_yaml_get(r, "c")->v.f == 2.5);
    CHECK(isinf(aurora_yaml_get(r, "d")->v.f) && aurora_yaml_get(r, "d")->v.f < 0);
    CHECK_EQ_INT(aurora_yaml_get(r, "e")->v.b, 1);
    CHECK_EQ_INT(aurora_yaml_get(r, "f")->v.i, 8);
    CHECK_EQ_STR(aurora_yaml_get(r, "a")->text, "0x10");
    aurora_yaml_free(&d);
    CHECK(d == NULL);
}

TEST(quoted_and_block_scalars_are_strings)
{
    aurora_yaml_doc *d = NULL;
    const aurora_yaml_node *r =
        root("a: \"42\"\nb: 'true'\nc: |\n  null\nd: \"x\\ty\\0z\"\ne: !!str 12\n", &d);

    CHECK(r);
    CHECK_EQ_INT(aurora_yaml_get(r, "a")->type, AURORA_YAML_STR);
    CHECK_EQ_INT(aurora_yaml_get(r, "b")->type, AURORA_YAML_STR);
    CHECK_EQ_INT(aurora_yaml_get(r, "c")->type, AURORA_YAML_STR);
    CHECK_EQ_STR(aurora_yaml_get(r, "c")->text, "null\n");
    CHECK_EQ_INT(aurora_yaml_get(r, "d")->len, 5);
    CHECK(memcmp(aurora_yaml_get(r, "d")->text, "x\ty\0z", 5) == 0);
    CHECK_EQ_INT(aurora_yaml_get(r, "e")->type, AURORA_YAML_STR);
    aurora_yaml_free(&d);
}

TEST(explicit_core_tags_must_fit_their_value)
{
    aurora_yaml_doc *d = NULL;
    const aurora_yaml_node *r = root("a: !!int \"12\"\nb: !!float 3\nc: !!bool 'false'\n", &d);

    CHECK(r);
    CHECK_EQ_INT(aurora_yaml_get(r, "a")->type, AURORA_YAML_INT);
    CHECK_EQ_INT(aurora_yaml_get(r, "a")->v.i, 12);
    CHECK_EQ_INT(aurora_yaml_get(r, "b")->type, AURORA_YAML_FLOAT);
    CHECK_EQ_INT(aurora_yaml_get(r, "c")->type, AURORA_YAML_BOOL);
    aurora_yaml_free(&d);
    CHECK_EQ_INT(load("a: !!int abc\n", &d), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1, column 4: value does not match its tag !!int");
    CHECK(d == NULL);
}

TEST(block_and_flow_collections_build_a_tree)
{
    aurora_yaml_doc *d = NULL;
    const aurora_yaml_node *r = root("list:\n- a\n- {x: 1, y: [2, 3]}\n- []\nmap: {}\n", &d), *list,
                           *m;

    CHECK(r);
    CHECK_EQ_INT(r->type, AURORA_YAML_MAP);
    CHECK_EQ_INT(r->n, 2);
    list = aurora_yaml_get(r, "list");
    CHECK_EQ_INT(list->type, AURORA_YAML_SEQ);
    CHECK_EQ_INT(list->n, 3);
    CHECK_EQ_STR(list->items[0]->text, "a");
    m = list->items[1];
    CHECK_EQ_INT(aurora_yaml_get(m, "y")->n, 2);
    CHECK_EQ_INT(aurora_yaml_get(m, "y")->items[1]->v.i, 3);
    CHECK_EQ_INT(list->items[2]->n, 0);
    CHECK_EQ_INT(aurora_yaml_get(r, "map")->type, AURORA_YAML_MAP);
    CHECK_EQ_INT(r->height, 4);
    CHECK_EQ_INT(r->count, 14);
    CHECK(aurora_yaml_get(r, "nope") == NULL);
    CHECK(aurora_yaml_get(list, "a") == NULL);
    aurora_yaml_free(&d);
}

TEST(multi_document_streams_keep_every_document)
{
    aurora_yaml_doc *d = NULL;

    CHECK_EQ_INT(load("kind: A\n---\nkind: B\n---\n---\n- 1\n...\n", &d), 0);
    CHECK_EQ_INT(d->ndocs, 4);
    CHECK_EQ_STR(aurora_yaml_get(d->docs[0], "kind")->text, "A");
    CHECK_EQ_STR(aurora_yaml_get(d->docs[1], "kind")->text, "B");
    CHECK_EQ_INT(d->docs[2]->type, AURORA_YAML_NULL);
    CHECK_EQ_INT(d->docs[3]->type, AURORA_YAML_SEQ);
    aurora_yaml_free(&d);
    CHECK_EQ_INT(load("", &d), 0);
    CHECK_EQ_INT(d->ndocs, 0);
    aurora_yaml_free(&d);
    CHECK_EQ_INT(load("# only a comment\n", &d), 0);
    CHECK_EQ_INT(d->ndocs, 0);
    aurora_yaml_free(&d);
}

TEST(aliases_expand_to_copies_of_their_anchor)
{
    aurora_yaml_doc *d = NULL;
    const aurora_yaml_node *r = root("base: &b {cpu: 1, tags: [x, y]}\n"
                                     "a: *b\n"
                                     "name: &n web\n"
                                     "again: *n\n"
                                     "merged:\n  <<: *b\n  cpu: 2\n",
                                     &d),
                           *a, *base;

    CHECK(r);
    base = aurora_yaml_get(r, "base");
    a = aurora_yaml_get(r, "a");
    CHECK(a != base);
    CHECK_EQ_INT(a->type, AURORA_YAML_MAP);
    CHECK_EQ_INT(aurora_yaml_get(a, "cpu")->v.i, 1);
    CHECK_EQ_STR(aurora_yaml_get(a, "tags")->items[1]->text, "y");
    CHECK(aurora_yaml_get(a, "tags") != aurora_yaml_get(base, "tags"));
    CHECK_EQ_STR(aurora_yaml_get(r, "again")->text, "web");
    /* A merge key stays an ordinary key. */
    CHECK_EQ_INT(aurora_yaml_get(aurora_yaml_get(r, "merged"), "<<")->type, AURORA_YAML_MAP);
    aurora_yaml_free(&d);
}

TEST(anchors_are_redefinable_and_local_to_a_document)
{
    aurora_yaml_doc *d = NULL;
    const aurora_yaml_node *r = root("- &a 1\n- &a 2\n- *a\n", &d);

    CHECK(r);
    CHECK_EQ_INT(r->items[2]->v.i, 2);
    aurora_yaml_free(&d);
    CHECK_EQ_INT(load("a: &x 1\n---\nb: *x\n", &d), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 3, column 4: alias to an unknown anchor");
    CHECK_EQ_INT(load("a: &x [1, *x]\n", &d), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1, column 11: alias inside its own anchor");
}

/* Appends the classic bomb: nine levels, each a list of nine aliases of the previous one. */
static void bomb(aurora_buf *b, int levels)
{
    int i, j;

    aurora_buf_puts(b, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (i = 1; i <= levels; i++) {
        aurora_buf_printf(b, "a%d: &a%d [", i, i);
        for (j = 0; j < 9; j++)
            aurora_buf_printf(b, "%s*a%d", j ? ", " : "", i - 1);
        aurora_buf_puts(b, "]\n");
    }
}

TEST(a_billion_laughs_bomb_fails_fast_on_the_node_limit)
{
    aurora_yaml_doc *d = NULL;
    aurora_buf b;

    aurora_buf_init(&b, 1 << 16);
    bomb(&b, 9);
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, NULL, &d, err, sizeof(err)), AURORA_E_TOO_LARGE);
    CHECK(strstr(err, "too many nodes (alias expansion)"));
    CHECK(d == NULL);
    aurora_buf_free(&b);
}

TEST(a_small_expansion_stays_within_the_node_limit)
{
    aurora_yaml_limits lim = {0};
    aurora_yaml_doc *d = NULL;
    aurora_buf b;

    aurora_buf_init(&b, 1 << 16);
    bomb(&b, 3); /* 9^4 scalars, about 9000 nodes */
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, NULL, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d->docs[0]->count > 7000, 1);
    aurora_yaml_free(&d);
    lim.max_nodes = 1000;
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, &lim, &d, err, sizeof(err)), AURORA_E_TOO_LARGE);
    CHECK(strstr(err, "too many nodes (alias expansion)"));
    aurora_buf_free(&b);
}

TEST(aliases_of_large_scalars_hit_the_expanded_bytes_limit)
{
    aurora_yaml_limits lim = {0};
    aurora_yaml_doc *d = NULL;
    aurora_buf b;
    int i;

    aurora_buf_init(&b, 1 << 20);
    aurora_buf_puts(&b, "- &big ");
    for (i = 0; i < 1000; i++)
        aurora_buf_puts(&b, "x");
    aurora_buf_puts(&b, "\n");
    for (i = 0; i < 20; i++)
        aurora_buf_puts(&b, "- *big\n");
    lim.max_expanded = 10000;
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, &lim, &d, err, sizeof(err)), AURORA_E_TOO_LARGE);
    CHECK(strstr(err, "more than 10000 bytes of scalars (alias expansion)"));
    lim.max_expanded = 30000;
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, &lim, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d->docs[0]->n, 21);
    aurora_yaml_free(&d);
    aurora_buf_free(&b);
}

TEST(nesting_deeper_than_the_limit_fails)
{
    aurora_yaml_limits lim = {0};
    aurora_yaml_doc *d = NULL;
    char deep[401];

    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    deep[400] = '\0';
    CHECK_EQ_INT(load(deep, &d), AURORA_E_TOO_LARGE);
    CHECK_EQ_STR(err, "line 1, column 65: nesting deeper than 64");
    lim.max_depth = 300;
    CHECK_EQ_INT(aurora_yaml_load(deep, 400, &lim, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d->docs[0]->height, 200);
    aurora_yaml_free(&d);
    /* An alias of a deep anchor may not take the tree past the limit either. */
    lim.max_depth = 4;
    CHECK_EQ_INT(aurora_yaml_load("a: &x [[[1]]]\nb: *x\n", 20, &lim, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d->docs[0]->height, 4);
    aurora_yaml_free(&d);
    CHECK_EQ_INT(aurora_yaml_load("a: &x [[[1]]]\nb: [*x]\n", 22, &lim, &d, err, sizeof(err)),
                 AURORA_E_TOO_LARGE);
    CHECK_EQ_STR(err, "line 2, column 5: nesting deeper than 4 (alias expansion)");
}

TEST(input_and_scalar_size_limits_apply)
{
    aurora_yaml_limits lim = {0};
    aurora_yaml_doc *d = NULL;
    static char big[AURORA_YAML_MAX_BYTES + 2];

    memset(big, 'a', sizeof(big) - 1);
    CHECK_EQ_INT(aurora_yaml_load(big, AURORA_YAML_MAX_BYTES + 1, NULL, &d, err, sizeof(err)),
                 AURORA_E_TOO_LARGE);
    CHECK_EQ_STR(err, "input is larger than 4194304 bytes");
    CHECK_EQ_INT(aurora_yaml_load(big, AURORA_YAML_MAX_SCALAR + 1, NULL, &d, err, sizeof(err)),
                 AURORA_E_TOO_LARGE);
    CHECK_EQ_STR(err, "line 1, column 1: a scalar is longer than 1048576 bytes");
    CHECK_EQ_INT(aurora_yaml_load(big, AURORA_YAML_MAX_SCALAR, NULL, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d->docs[0]->len, AURORA_YAML_MAX_SCALAR);
    aurora_yaml_free(&d);
    lim.max_scalar = 3;
    CHECK_EQ_INT(aurora_yaml_load("k: abcd\n", 8, &lim, &d, err, sizeof(err)), AURORA_E_TOO_LARGE);
    CHECK_EQ_STR(err, "line 1, column 4: a scalar is longer than 3 bytes");
    lim.max_scalar = 0;
    lim.max_bytes = 5;
    CHECK_EQ_INT(aurora_yaml_load("k: abcd\n", 8, &lim, &d, err, sizeof(err)), AURORA_E_TOO_LARGE);
}

TEST(keys_must_be_scalars_and_unique)
{
    aurora_yaml_doc *d = NULL;
    aurora_buf b;
    int i;

    CHECK_EQ_INT(load("? [a, b]\n: 1\n", &d), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1, column 3: a mapping key must be a scalar");
    CHECK_EQ_INT(load("{[1]: 2}", &d), AURORA_E_INVALID);
    CHECK_EQ_INT(load("a: &m {x: 1}\n*m : 2\n", &d), AURORA_E_INVALID);
    CHECK_EQ_INT(load("a: 1\nb: 2\na: 3\n", &d), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 3, column 1: duplicate key in a mapping");
    CHECK_EQ_INT(load("x:\n  a: 1\n  'a': 3\n", &d), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 3, column 3: duplicate key in a mapping");
    /* A large mapping takes the sorting path. */
    aurora_buf_init(&b, 1 << 20);
    for (i = 0; i < 100; i++)
        aurora_buf_printf(&b, "k%d: %d\n", i % 90, i);
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, NULL, &d, err, sizeof(err)), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 91, column 1: duplicate key in a mapping");
    aurora_buf_reset(&b);
    for (i = 0; i < 100; i++)
        aurora_buf_printf(&b, "k%d: %d\n", i, i);
    CHECK_EQ_INT(aurora_yaml_load(b.data, b.len, NULL, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d->docs[0]->n, 100);
    aurora_yaml_free(&d);
    aurora_buf_free(&b);
}

TEST(syntax_errors_carry_line_and_column)
{
    aurora_yaml_doc *d = NULL;

    CHECK_EQ_INT(load("a: 1\nb:\n  c: 2\n d: 3\n", &d), AURORA_E_INVALID);
    CHECK(strncmp(err, "line 4, column 2: did not find expected key", 43) == 0);
    CHECK_EQ_INT(load("a:\n\t- 1\n", &d), AURORA_E_INVALID);
    CHECK(strncmp(err, "line 2, column 1: found character that cannot start any token", 60) == 0);
    CHECK_EQ_INT(load("a: [1, 2\n", &d), AURORA_E_INVALID);
    CHECK(strstr(err, "line 2, column 1: did not find expected ',' or ']'"));
    CHECK_EQ_INT(load("a: \"unterminated\n", &d), AURORA_E_INVALID);
    CHECK(strstr(err, "found unexpected end of stream"));
    CHECK_EQ_INT(load("a: *\n", &d), AURORA_E_INVALID);
    CHECK(d == NULL);
}

TEST(bad_bytes_are_reported_at_their_position)
{
    aurora_yaml_doc *d = NULL;

    CHECK_EQ_INT(aurora_yaml_load("a: 1\nb: x\001y\n", 12, NULL, &d, err, sizeof(err)),
                 AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 2, column 5: control characters are not allowed");
    CHECK_EQ_INT(aurora_yaml_load("a: \xff\xfe\n", 6, NULL, &d, err, sizeof(err)),
                 AURORA_E_INVALID);
    CHECK(strstr(err, "line 1, column 4: invalid leading UTF-8 octet"));
    CHECK_EQ_INT(aurora_yaml_load("a: b\0c\n", 7, NULL, &d, err, sizeof(err)), AURORA_E_INVALID);
}

TEST(truncated_documents_fail_cleanly)
{
    static const char full[] = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://x\n"
                               "  name: c\nusers:\n- name: u\n  user: {token: \"abc\"}\n";
    aurora_yaml_doc *d = NULL;
    size_t n;
    int ok = 0, bad = 0;

    /* Every prefix either loads or fails with a message; none crashes or leaks (ASan). */
    for (n = 0; n < sizeof(full) - 1; n++) {
        int rc = aurora_yaml_load(full, n, NULL, &d, err, sizeof(err));

        if (rc == 0) {
            ok++;
            aurora_yaml_free(&d);
        } else {
            CHECK_EQ_INT(rc, AURORA_E_INVALID);
            CHECK(strncmp(err, "line ", 5) == 0);
            bad++;
        }
    }
    CHECK(ok > 0 && bad > 0);
}

TEST(type_names_are_words)
{
    CHECK_EQ_STR(aurora_yaml_type_name(AURORA_YAML_MAP), "mapping");
    CHECK_EQ_STR(aurora_yaml_type_name(AURORA_YAML_SEQ), "sequence");
    CHECK_EQ_STR(aurora_yaml_type_name(AURORA_YAML_STR), "string");
    aurora_yaml_free(NULL);
}

int main(void)
{
    RUN(plain_scalars_follow_the_core_schema);
    RUN(scalar_values_are_parsed);
    RUN(quoted_and_block_scalars_are_strings);
    RUN(explicit_core_tags_must_fit_their_value);
    RUN(block_and_flow_collections_build_a_tree);
    RUN(multi_document_streams_keep_every_document);
    RUN(aliases_expand_to_copies_of_their_anchor);
    RUN(anchors_are_redefinable_and_local_to_a_document);
    RUN(a_billion_laughs_bomb_fails_fast_on_the_node_limit);
    RUN(a_small_expansion_stays_within_the_node_limit);
    RUN(aliases_of_large_scalars_hit_the_expanded_bytes_limit);
    RUN(nesting_deeper_than_the_limit_fails);
    RUN(input_and_scalar_size_limits_apply);
    RUN(keys_must_be_scalars_and_unique);
    RUN(syntax_errors_carry_line_and_column);
    RUN(bad_bytes_are_reported_at_their_position);
    RUN(truncated_documents_fail_cleanly);
    RUN(type_names_are_words);
    return check_summary();
}
