/*
 * yaml.c: the bounded YAML loader (see yaml.h). It drives libyaml's event parser (never the
 * document API, which has no limits) and builds the tree itself, so every limit is checked the
 * moment it is crossed: a billion-laughs bomb stops at the first alias that would take the node
 * count over the limit, before anything is copied. Aliases become deep copies of their anchored
 * node, so the tree is a plain tree that is freed in one walk.
 *
 * Scalars may hold credentials (kubeconfigs do), so every scalar copy is wiped before it is
 * freed, and so are libyaml's event values, its input buffers and the scalar tokens still queued
 * when parsing stops. Error messages name a position and a problem, never the input's bytes.
 * No Lua, no global state.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "aurora/aurora.h"
#include "aurora/yaml.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

/* Anchors of the current document: an open-addressing table from name to node. A collection's
 * node is registered when it opens; its count stays 0 until it closes, which is how an alias
 * inside its own anchor (a recursive alias) is recognised. */
typedef struct anchors {
    char **names;
    aurora_yaml_node **nodes;
    size_t cap; /* a power of two, or 0 */
    size_t used;
} anchors;

/* An open sequence or mapping. Its node's n counts complete items (pairs for a mapping); used
 * counts the pointers stored, so a mapping's key that waits for its value is the one at
 * items[used - 1] when used is odd. */
typedef struct frame {
    aurora_yaml_node *node;
    size_t used, cap;
} frame;

typedef struct loader {
    aurora_yaml_limits lim;
    yaml_parser_t parser;
    const char *text; /* the input, to turn byte offsets into lines */
    size_t n;
    frame *stack; /* open sequences and mappings, innermost last */
    size_t depth, stack_cap;
    aurora_yaml_node *root; /* the document being built */
    size_t nodes, bytes;    /* totals of the stream so far, aliases expanded */
    anchors a;
    aurora_yaml_doc *doc;
    size_t docs_cap;
    char *errmsg;
    size_t errlen;
} loader;

/* ---- nodes ------------------------------------------------------------------------------ */

static void node_free(aurora_yaml_node *node)
{
    size_t i, k;

    if (!node)
        return;
    if (node->text) {
        aurora_wipe(node->text, node->len + 1);
        free(node->text);
    }
    k = node->type == AURORA_YAML_MAP ? 2 * node->n : node->n;
    for (i = 0; i < k; i++)
        node_free(node->items[i]);
    free(node->items);
    free(node);
}

/* A deep copy of src, or NULL when out of memory. Recursion depth is the height of src, which
 * the loader has bounded. */
static aurora_yaml_node *node_copy(const aurora_yaml_node *src)
{
    aurora_yaml_node *c = malloc(sizeof(*c));
    size_t i, k = src->type == AURORA_YAML_MAP ? 2 * src->n : src->n;

    if (!c)
        return NULL;
    *c = *src;
    c->text = NULL;
    c->items = NULL;
    c->n = 0;
    if (src->text) {
        c->text = malloc(src->len + 1);
        if (!c->text)
            goto fail;
        memcpy(c->text, src->text, src->len + 1);
    }
    if (k) {
        c->items = calloc(k, sizeof(*c->items));
        if (!c->items)
            goto fail;
        c->n = src->n;
        for (i = 0; i < k; i++) {
            c->items[i] = node_copy(src->items[i]);
            if (!c->items[i])
                goto fail;
        }
    }
    return c;
fail:
    node_free(c);
    return NULL;
}

const aurora_yaml_node *aurora_yaml_get(const aurora_yaml_node *m, const char *key)
{
    size_t i, klen;

    if (!m || m->type != AURORA_YAML_MAP)
        return NULL;
    klen = strlen(key);
    for (i = 0; i < m->n; i++) {
        const aurora_yaml_node *k = m->items[2 * i];

        if (k->len == klen && memcmp(k->text, key, klen) == 0)
            return m->items[2 * i + 1];
    }
    return NULL;
}

const char *aurora_yaml_type_name(aurora_yaml_type t)
{
    switch (t) {
    case AURORA_YAML_NULL:
        return "null";
    case AURORA_YAML_BOOL:
        return "boolean";
    case AURORA_YAML_INT:
        return "integer";
    case AURORA_YAML_FLOAT:
        return "float";
    case AURORA_YAML_STR:
        return "string";
    case AURORA_YAML_SEQ:
        return "sequence";
    case AURORA_YAML_MAP:
        return "mapping";
    }
    return "unknown";
}

void aurora_yaml_free(aurora_yaml_doc **doc)
{
    size_t i;

    if (!doc || !*doc)
        return;
    for (i = 0; i < (*doc)->ndocs; i++)
        node_free((*doc)->docs[i]);
    free((*doc)->docs);
    free(*doc);
    *doc = NULL;
}

/* ---- errors ----------------------------------------------------------------------------- */

static int fail(loader *ld, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes the message and returns rc. */
static int fail(loader *ld, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ld->errmsg, ld->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* The message of a libyaml failure. Reader errors (bad UTF-8, control characters) carry a byte
 * offset rather than a mark; it is turned into a line and column here. */
static int parser_fail(loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1, i;

    if (p->error == YAML_MEMORY_ERROR)
        return fail(ld, AURORA_E_NOMEM, "out of memory while parsing YAML");
    if (p->error == YAML_READER_ERROR) {
        line = 1;
        col = 1;
        for (i = 0; i < p->problem_offset && i < ld->n; i++) {
            if (ld->text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    }
    if (p->context)
        return fail(ld, AURORA_E_INVALID, "line %zu, column %zu: %s (%s at line %zu, column %zu)",
                    line, col, problem, p->context, p->context_mark.line + 1,
                    p->context_mark.column + 1);
    return fail(ld, AURORA_E_INVALID, "line %zu, column %zu: %s", line, col, problem);
}

/* ---- anchors ---------------------------------------------------------------------------- */

static size_t anchor_hash(const char *s)
{
    size_t h = 14695981039346656037u;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211u;
    return h;
}

static void anchors_clear(anchors *a)
{
    size_t i;

    for (i = 0; i < a->cap; i++)
        free(a->names[i]);
    free(a->names);
    free(a->nodes);
    memset(a, 0, sizeof(*a));
}

/* The slot of name: where it is, or the empty slot where it would go. a->cap must be > 0. */
static size_t anchor_slot(const anchors *a, const char *name)
{
    size_t i = anchor_hash(name) & (a->cap - 1);

    while (a->names[i] && strcmp(a->names[i], name) != 0)
        i = (i + 1) & (a->cap - 1);
    return i;
}

static int anchors_grow(anchors *a)
{
    anchors b = {0};
    size_t i, j;

    b.cap = a->cap ? 2 * a->cap : 16;
    b.names = calloc(b.cap, sizeof(*b.names));
    b.nodes = calloc(b.cap, sizeof(*b.nodes));
    if (!b.names || !b.nodes) {
        free(b.names);
        free(b.nodes);
        return AURORA_E_NOMEM;
    }
    for (i = 0; i < a->cap; i++) {
        if (!a->names[i])
            continue;
        j = anchor_slot(&b, a->names[i]);
        b.names[j] = a->names[i];
        b.nodes[j] = a->nodes[i];
    }
    b.used = a->used;
    free(a->names);
    free(a->nodes);
    *a = b;
    return 0;
}

/* Points name at node; a later anchor of the same name replaces an earlier one (YAML 1.2). */
static int anchor_set(loader *ld, const char *name, aurora_yaml_node *node)
{
    anchors *a = &ld->a;
    size_t i;

    if ((a->used + 1) * 2 > a->cap && anchors_grow(a))
        return fail(ld, AURORA_E_NOMEM, "out of memory");
    i = anchor_slot(a, name);
    if (!a->names[i]) {
        a->names[i] = strdup(name);
        if (!a->names[i])
            return fail(ld, AURORA_E_NOMEM, "out of memory");
        a->used++;
    }
    a->nodes[i] = node;
    return 0;
}

static aurora_yaml_node *anchor_get(const anchors *a, const char *name)
{
    size_t i;

    if (!a->cap)
        return NULL;
    i = anchor_slot(a, name);
    return a->names[i] ? a->nodes[i] : NULL;
}

/* ---- scalars ---------------------------------------------------------------------------- */

/* 1 when c is a digit of base 8, 10 or 16. */
static int is_digit(unsigned char c, int base)
{
    if (base == 8)
        return c >= '0' && c <= '7';
    if (base == 10)
        return c >= '0' && c <= '9';
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Digits of base in s[0..n), at least one. */
static int all_digits(const char *s, size_t n, int base)
{
    size_t i;

    if (!n)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i], base))
            return 0;
    return 1;
}

/* Moves *i past the decimal digits at s[*i] (n bytes in all); returns how many there were. */
static size_t skip_digits(const char *s, size_t n, size_t *i)
{
    size_t start = *i;

    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i - start;
}

/* 1 when s matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? of the core schema. */
static int is_core_float(const char *s, size_t n)
{
    size_t i = 0, int_digits, frac_digits = 0;

    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    int_digits = skip_digits(s, n, &i);
    if (i < n && s[i] == '.') {
        i++;
        frac_digits = skip_digits(s, n, &i);
    }
    if (!int_digits && !frac_digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        if (!skip_digits(s, n, &i))
            return 0;
    }
    return i == n;
}

static int one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return 1;
    return 0;
}

/* Parses digits of base into *v. Returns 0, or -1 when the value does not fit long long. */
static int parse_ull(const char *s, int base, long long *v)
{
    unsigned long long u;
    char *end;

    errno = 0;
    u = strtoull(s, &end, base);
    if (errno || u > (unsigned long long)LLONG_MAX)
        return -1;
    *v = (long long)u;
    return 0;
}

/* Sets the type and value of a scalar node from its text by the YAML 1.2 core schema. The text
 * has no embedded NUL where a number is recognised (those are checked character by character). */
static void resolve_core(aurora_yaml_node *node)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *s = node->text;
    size_t n = node->len;

    node->type = AURORA_YAML_STR;
    if (n == 0 || (strlen(s) == n && one_of(s, nulls))) {
        node->type = AURORA_YAML_NULL;
        return;
    }
    if (strlen(s) != n)
        return;
    if (one_of(s, trues) || one_of(s, falses)) {
        node->type = AURORA_YAML_BOOL;
        node->v.b = s[0] == 't' || s[0] == 'T';
        return;
    }
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        if (all_digits(s + 2, n - 2, s[1] == 'x' ? 16 : 8) &&
            parse_ull(s + 2, s[1] == 'x' ? 16 : 8, &node->v.i) == 0)
            node->type = AURORA_YAML_INT;
        return;
    }
    if (all_digits(s + (s[0] == '-' || s[0] == '+'), n - (s[0] == '-' || s[0] == '+'), 10)) {
        char *end;

        errno = 0;
        node->v.i = strtoll(s, &end, 10);
        if (errno == 0) {
            node->type = AURORA_YAML_INT;
            return;
        }
        /* Too large for 64 bits: still a number, as a float. */
        node->type = AURORA_YAML_FLOAT;
        node->v.f = strtod(s, &end);
        return;
    }
    if (is_core_float(s, n)) {
        char *end;

        node->type = AURORA_YAML_FLOAT;
        node->v.f = strtod(s, &end);
        return;
    }
    if (one_of(s, infs) || one_of(s, ninfs)) {
        node->type = AURORA_YAML_FLOAT;
        node->v.f = one_of(s, ninfs) ? -INFINITY : INFINITY;
        return;
    }
    if (one_of(s, nans)) {
        node->type = AURORA_YAML_FLOAT;
        node->v.f = NAN;
    }
}

/*
 * Types a scalar: an explicit core tag (!!str, !!int, !!float, !!bool, !!null) decides, and the
 * value must fit it; otherwise plain scalars follow the core schema and quoted or block scalars
 * are strings. Other tags (custom ones, !!binary, !!timestamp) are ignored. Returns 0 or
 * AURORA_E_INVALID.
 */
static int resolve(loader *ld, aurora_yaml_node *node, const char *tag, int plain)
{
    const char *want;

    if (tag && strcmp(tag, "!") == 0) {
        node->type = AURORA_YAML_STR;
        return 0;
    }
    if (!tag || strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0) {
        if (plain)
            resolve_core(node);
        else
            node->type = AURORA_YAML_STR;
        return 0;
    }
    want = tag + strlen(TAG_PREFIX);
    if (strcmp(want, "str") == 0) {
        node->type = AURORA_YAML_STR;
        return 0;
    }
    resolve_core(node);
    if (strcmp(want, "float") == 0 && node->type == AURORA_YAML_INT) {
        node->type = AURORA_YAML_FLOAT;
        node->v.f = (double)node->v.i;
    }
    if ((strcmp(want, "null") == 0 && node->type != AURORA_YAML_NULL) ||
        (strcmp(want, "bool") == 0 && node->type != AURORA_YAML_BOOL) ||
        (strcmp(want, "int") == 0 && node->type != AURORA_YAML_INT) ||
        (strcmp(want, "float") == 0 && node->type != AURORA_YAML_FLOAT))
        return fail(ld, AURORA_E_INVALID, "line %zu, column %zu: value does not match its tag !!%s",
                    node->line, node->column, want);
    if (strcmp(want, "null") && strcmp(want, "bool") && strcmp(want, "int") &&
        strcmp(want, "float"))
        node->type = plain ? node->type : AURORA_YAML_STR; /* !!binary, !!timestamp, ... */
    return 0;
}

/* ---- building the tree ------------------------------------------------------------------ */

static aurora_yaml_node *new_node(loader *ld, aurora_yaml_type type, const yaml_mark_t *m)
{
    aurora_yaml_node *node = calloc(1, sizeof(*node));

    if (!node) {
        fail(ld, AURORA_E_NOMEM, "out of memory");
        return NULL;
    }
    node->type = type;
    node->line = m->line + 1;
    node->column = m->column + 1;
    return node;
}

/* Counts nodes and scalar bytes about to join the tree. Returns 0 or AURORA_E_TOO_LARGE. */
static int account(loader *ld, size_t nodes, size_t bytes, size_t line, size_t col, int alias)
{
    if (nodes > ld->lim.max_nodes - ld->nodes)
        return fail(ld, AURORA_E_TOO_LARGE, "line %zu, column %zu: too many nodes%s", line, col,
                    alias ? " (alias expansion)" : "");
    if (bytes > ld->lim.max_expanded - ld->bytes)
        return fail(ld, AURORA_E_TOO_LARGE,
                    "line %zu, column %zu: more than %zu bytes of scalars%s", line, col,
                    ld->lim.max_expanded, alias ? " (alias expansion)" : "");
    ld->nodes += nodes;
    ld->bytes += bytes;
    return 0;
}

/* Attaches a new node (owned from here on by the tree) to the innermost open collection, or
 * makes it the document's root. A node in key position must be a scalar. On failure node is
 * freed. Returns 0 or an aurora_err. */
static int attach(loader *ld, aurora_yaml_node *node)
{
    frame *f;

    if (!ld->depth) {
        ld->root = node;
        return 0;
    }
    f = &ld->stack[ld->depth - 1];
    if (f->node->type == AURORA_YAML_MAP && !(f->used & 1) && !node->text) {
        fail(ld, AURORA_E_INVALID, "line %zu, column %zu: a mapping key must be a scalar",
             node->line, node->column);
        node_free(node);
        return AURORA_E_INVALID;
    }
    if (f->used == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        aurora_yaml_node **items = realloc(f->node->items, cap * sizeof(*items));

        if (!items) {
            node_free(node);
            return fail(ld, AURORA_E_NOMEM, "out of memory");
        }
        f->node->items = items;
        f->cap = cap;
    }
    f->node->items[f->used++] = node;
    f->node->n = f->node->type == AURORA_YAML_MAP ? f->used / 2 : f->used;
    return 0;
}

static int later(const aurora_yaml_node *x, const aurora_yaml_node *y)
{
    return x->line > y->line || (x->line == y->line && x->column > y->column);
}

/* Orders mapping keys by length, bytes, then position, so equal keys sit together in the order
 * they were written. */
static int key_cmp(const void *a, const void *b)
{
    const aurora_yaml_node *const *x = a, *const *y = b;
    int c;

    if ((*x)->len != (*y)->len)
        return (*x)->len < (*y)->len ? -1 : 1;
    c = memcmp((*x)->text, (*y)->text, (*x)->len);
    if (c)
        return c;
    return later(*x, *y) - later(*y, *x);
}

static int key_eq(const aurora_yaml_node *x, const aurora_yaml_node *y)
{
    return x->len == y->len && memcmp(x->text, y->text, x->len) == 0;
}

/* Fails on the second occurrence of a key in the mapping m. Small mappings compare every pair;
 * larger ones sort a copy of the key pointers. Returns 0 or an aurora_err. */
static int check_keys(loader *ld, const aurora_yaml_node *m)
{
    const aurora_yaml_node *dup = NULL, **keys;
    size_t i, j;

    if (m->n <= 16) {
        for (i = 1; i < m->n && !dup; i++)
            for (j = 0; j < i && !dup; j++)
                if (key_eq(m->items[2 * i], m->items[2 * j]))
                    dup = m->items[2 * i];
    } else {
        keys = malloc(m->n * sizeof(*keys));
        if (!keys)
            return fail(ld, AURORA_E_NOMEM, "out of memory");
        for (i = 0; i < m->n; i++)
            keys[i] = m->items[2 * i];
        qsort(keys, m->n, sizeof(*keys), key_cmp);
        /* The first repetition in document order is the earliest second member of a run. */
        for (i = 1; i < m->n; i++)
            if (key_eq(keys[i - 1], keys[i]) && (!dup || later(dup, keys[i])))
                dup = keys[i];
        free(keys);
    }
    if (dup)
        return fail(ld, AURORA_E_INVALID, "line %zu, column %zu: duplicate key in a mapping",
                    dup->line, dup->column);
    return 0;
}

static int on_scalar(loader *ld, yaml_event_t *ev)
{
    size_t len = ev->data.scalar.length;
    aurora_yaml_node *node;
    int rc;

    if (len > ld->lim.max_scalar)
        return fail(ld, AURORA_E_TOO_LARGE,
                    "line %zu, column %zu: a scalar is longer than %zu bytes",
                    ev->start_mark.line + 1, ev->start_mark.column + 1, ld->lim.max_scalar);
    rc = account(ld, 1, len, ev->start_mark.line + 1, ev->start_mark.column + 1, 0);
    if (rc)
        return rc;
    node = new_node(ld, AURORA_YAML_STR, &ev->start_mark);
    if (!node)
        return AURORA_E_NOMEM;
    node->text = malloc(len + 1);
    if (!node->text) {
        node_free(node);
        return fail(ld, AURORA_E_NOMEM, "out of memory");
    }
    memcpy(node->text, ev->data.scalar.value, len);
    node->text[len] = '\0';
    node->len = len;
    node->count = 1;
    node->bytes = len;
    rc = resolve(ld, node, (const char *)ev->data.scalar.tag,
                 ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
    if (rc) {
        node_free(node);
        return rc;
    }
    rc = attach(ld, node);
    if (!rc && ev->data.scalar.anchor)
        rc = anchor_set(ld, (const char *)ev->data.scalar.anchor, node);
    return rc;
}

static int on_alias(loader *ld, yaml_event_t *ev)
{
    const aurora_yaml_node *target = anchor_get(&ld->a, (const char *)ev->data.alias.anchor);
    size_t line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;
    aurora_yaml_node *copy;
    int rc;

    if (!target)
        return fail(ld, AURORA_E_INVALID, "line %zu, column %zu: alias to an unknown anchor", line,
                    col);
    if (!target->count)
        return fail(ld, AURORA_E_INVALID, "line %zu, column %zu: alias inside its own anchor", line,
                    col);
    if (ld->depth + target->height > ld->lim.max_depth)
        return fail(ld, AURORA_E_TOO_LARGE,
                    "line %zu, column %zu: nesting deeper than %zu (alias expansion)", line, col,
                    ld->lim.max_depth);
    rc = account(ld, target->count, target->bytes, line, col, 1);
    if (rc)
        return rc;
    copy = node_copy(target);
    if (!copy)
        return fail(ld, AURORA_E_NOMEM, "out of memory");
    copy->line = line;
    copy->column = col;
    return attach(ld, copy);
}

static int on_start(loader *ld, yaml_event_t *ev, aurora_yaml_type type)
{
    const char *anchor = (const char *)(type == AURORA_YAML_SEQ ? ev->data.sequence_start.anchor
                                                                : ev->data.mapping_start.anchor);
    size_t line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;
    aurora_yaml_node *node;
    int rc;

    if (ld->depth + 1 > ld->lim.max_depth)
        return fail(ld, AURORA_E_TOO_LARGE, "line %zu, column %zu: nesting deeper than %zu", line,
                    col, ld->lim.max_depth);
    rc = account(ld, 1, 0, line, col, 0);
    if (rc)
        return rc;
    if (ld->depth == ld->stack_cap) {
        size_t cap = ld->stack_cap ? 2 * ld->stack_cap : 16;
        frame *s = realloc(ld->stack, cap * sizeof(*s));

        if (!s)
            return fail(ld, AURORA_E_NOMEM, "out of memory");
        ld->stack = s;
        ld->stack_cap = cap;
    }
    node = new_node(ld, type, &ev->start_mark);
    if (!node)
        return AURORA_E_NOMEM;
    rc = attach(ld, node);
    if (rc)
        return rc;
    ld->stack[ld->depth].node = node;
    ld->stack[ld->depth].used = 0;
    ld->stack[ld->depth].cap = 0;
    ld->depth++;
    if (anchor)
        rc = anchor_set(ld, anchor, node);
    return rc;
}

/* Closes the innermost collection: sums its subtree and checks a mapping's keys. */
static int on_end(loader *ld)
{
    aurora_yaml_node *node = ld->stack[ld->depth - 1].node;
    size_t i, k = node->type == AURORA_YAML_MAP ? 2 * node->n : node->n;

    ld->depth--;
    node->count = 1;
    node->height = 1;
    node->bytes = 0;
    for (i = 0; i < k; i++) {
        node->count += node->items[i]->count;
        node->bytes += node->items[i]->bytes;
        if (node->items[i]->height + 1 > node->height)
            node->height = node->items[i]->height + 1;
    }
    return node->type == AURORA_YAML_MAP ? check_keys(ld, node) : 0;
}

static int on_document_end(loader *ld)
{
    if (ld->doc->ndocs == ld->docs_cap) {
        size_t cap = ld->docs_cap ? 2 * ld->docs_cap : 4;
        aurora_yaml_node **d = realloc(ld->doc->docs, cap * sizeof(*d));

        if (!d)
            return fail(ld, AURORA_E_NOMEM, "out of memory");
        ld->doc->docs = d;
        ld->docs_cap = cap;
    }
    ld->doc->docs[ld->doc->ndocs++] = ld->root;
    ld->root = NULL;
    anchors_clear(&ld->a);
    return 0;
}

/* Wipes the bytes libyaml may still hold: its input buffers and the values of queued scalar
 * tokens. Then frees the parser. */
static void parser_wipe_delete(yaml_parser_t *p)
{
    yaml_token_t *t;

    if (p->raw_buffer.start)
        aurora_wipe(p->raw_buffer.start, (size_t)(p->raw_buffer.end - p->raw_buffer.start));
    if (p->buffer.start)
        aurora_wipe(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
    for (t = p->tokens.head; t && t < p->tokens.tail; t++)
        if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value)
            aurora_wipe(t->data.scalar.value, t->data.scalar.length);
    yaml_parser_delete(p);
}

/* Wipes the event's scalar value (our copy is in the tree) and frees the event. */
static void event_wipe_delete(yaml_event_t *ev)
{
    if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.value)
        aurora_wipe(ev->data.scalar.value, ev->data.scalar.length);
    yaml_event_delete(ev);
}

static int dispatch(loader *ld, yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        ld->root = NULL;
        return 0;
    case YAML_DOCUMENT_END_EVENT:
        return on_document_end(ld);
    case YAML_SCALAR_EVENT:
        return on_scalar(ld, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(ld, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(ld, ev, AURORA_YAML_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(ld, ev, AURORA_YAML_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(ld);
    default:
        return 0;
    }
}

/* Frees the partly built document after a failure: first the key of each open mapping that
 * still waits for its value (not counted in n), then the tree from its root. */
static void drop_partial(loader *ld)
{
    size_t i;

    for (i = 0; i < ld->depth; i++) {
        frame *f = &ld->stack[i];

        if (f->node->type == AURORA_YAML_MAP && (f->used & 1))
            node_free(f->node->items[f->used - 1]);
    }
    node_free(ld->root);
    ld->root = NULL;
    ld->depth = 0;
}

static size_t or_default(size_t v, size_t def)
{
    return v ? v : def;
}

int aurora_yaml_load(const char *text, size_t n, const aurora_yaml_limits *lim,
                     aurora_yaml_doc **out, char *errmsg, size_t errlen)
{
    loader ld;
    yaml_event_t ev;
    int rc = 0, done = 0, parser_ready = 0;

    memset(&ld, 0, sizeof(ld));
    ld.errmsg = errmsg;
    ld.errlen = errlen;
    ld.text = text;
    ld.n = n;
    ld.lim.max_bytes = or_default(lim ? lim->max_bytes : 0, AURORA_YAML_MAX_BYTES);
    ld.lim.max_depth = or_default(lim ? lim->max_depth : 0, AURORA_YAML_MAX_DEPTH);
    if (ld.lim.max_depth > AURORA_YAML_DEPTH_CEILING)
        ld.lim.max_depth = AURORA_YAML_DEPTH_CEILING;
    ld.lim.max_nodes = or_default(lim ? lim->max_nodes : 0, AURORA_YAML_MAX_NODES);
    ld.lim.max_scalar = or_default(lim ? lim->max_scalar : 0, AURORA_YAML_MAX_SCALAR);
    ld.lim.max_expanded = or_default(lim ? lim->max_expanded : 0, AURORA_YAML_MAX_EXPANDED);
    if (n > ld.lim.max_bytes) {
        rc = fail(&ld, AURORA_E_TOO_LARGE, "input is larger than %zu bytes", ld.lim.max_bytes);
        goto out;
    }
    ld.doc = calloc(1, sizeof(*ld.doc));
    if (!ld.doc || !yaml_parser_initialize(&ld.parser)) {
        rc = fail(&ld, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    parser_ready = 1;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, n);
    while (!done) {
        if (!yaml_parser_parse(&ld.parser, &ev)) {
            rc = parser_fail(&ld);
            goto out;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = dispatch(&ld, &ev);
        event_wipe_delete(&ev);
        if (rc)
            goto out;
    }
out:
    if (parser_ready)
        parser_wipe_delete(&ld.parser);
    if (rc) {
        drop_partial(&ld);
        aurora_yaml_free(&ld.doc);
    } else {
        *out = ld.doc;
    }
    anchors_clear(&ld.a);
    free(ld.stack);
    return rc;
}
