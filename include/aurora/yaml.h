/*
 * yaml.h: a bounded YAML loader on libyaml's event parser. It reads a stream of one or more
 * documents into a tree of nodes (scalars, sequences, mappings), resolving plain scalars by the
 * YAML 1.2 core schema and expanding aliases, and enforces its limits while it parses: input
 * size, nesting depth, node count (aliases count every node they expand to), scalar length and
 * the scalar bytes of the expanded tree. aurora.yaml (yaml_lua.c) turns trees into Lua values and
 * kubeconfig.c reads kubeconfigs from them. The loader uses no Lua; the two Lua helpers at the
 * end are defined in yaml_lua.c and shared with kubeconfig_lua.c.
 *
 * Every scalar's bytes are wiped when the tree is freed, and so are libyaml's own buffers, so a
 * document holding credentials (a kubeconfig) leaves no copy of them in freed memory.
 */
#ifndef AURORA_YAML_H
#define AURORA_YAML_H

#include <stddef.h>

typedef struct lua_State lua_State;

#define AURORA_YAML_MAX_BYTES (4u * 1024 * 1024)     /* input bytes */
#define AURORA_YAML_MAX_DEPTH 64                     /* nested sequences and mappings */
#define AURORA_YAML_MAX_NODES 200000                 /* nodes, after alias expansion */
#define AURORA_YAML_MAX_SCALAR (1024u * 1024)        /* bytes of one scalar */
#define AURORA_YAML_MAX_EXPANDED (16u * 1024 * 1024) /* scalar bytes, after alias expansion */
#define AURORA_YAML_DEPTH_CEILING 1000               /* the largest max_depth accepted */

/* The limits of one load. A field that is 0 takes its default (the macros above). */
typedef struct aurora_yaml_limits {
    size_t max_bytes;
    size_t max_depth; /* at most AURORA_YAML_DEPTH_CEILING; larger values are clamped */
    size_t max_nodes;
    size_t max_scalar;
    size_t max_expanded;
} aurora_yaml_limits;

typedef enum {
    AURORA_YAML_NULL = 0, /* ~, null, Null, NULL or nothing */
    AURORA_YAML_BOOL,     /* true / false, True, TRUE, ... */
    AURORA_YAML_INT,      /* decimal, 0x hex or 0o octal that fits 64 bits */
    AURORA_YAML_FLOAT,    /* decimal with a dot or exponent (or a decimal integer too large for
                             64 bits), .inf, -.inf, .nan */
    AURORA_YAML_STR,      /* anything else, and every quoted or block scalar */
    AURORA_YAML_SEQ,
    AURORA_YAML_MAP,
} aurora_yaml_type;

typedef struct aurora_yaml_node aurora_yaml_node;

struct aurora_yaml_node {
    aurora_yaml_type type;
    size_t line, column; /* 1-based position of the node in the input */
    char *text;          /* scalars: the value as written (after unquoting, folding and
                            escapes), NUL-terminated; NULL for sequences and mappings */
    size_t len;          /* bytes of text */
    union {
        int b;       /* AURORA_YAML_BOOL */
        long long i; /* AURORA_YAML_INT */
        double f;    /* AURORA_YAML_FLOAT */
    } v;
    aurora_yaml_node **items; /* SEQ: n items; MAP: n pairs as 2n nodes key, value, key, ... */
    size_t n;
    size_t count;  /* nodes in this subtree, itself included */
    size_t height; /* levels of nesting: 0 for a scalar, 1 + the largest height of
                      the children for a sequence or mapping */
    size_t bytes;  /* scalar bytes in this subtree */
};

/* A loaded stream: its documents in order (a document that is only null has a NULL-type
 * root). */
typedef struct aurora_yaml_doc {
    aurora_yaml_node **docs;
    size_t ndocs;
} aurora_yaml_doc;

/*
 * Loads every document of the n bytes at text. lim may be NULL (all defaults). Mapping keys must
 * be scalars and unique (compared by their text); aliases are expanded into copies; a merge key
 * `<<` stays an ordinary key. Sets *out, which the caller frees with aurora_yaml_free.
 *
 * Returns 0, or an aurora_err with a message in errmsg (never quoting the input):
 * - AURORA_E_INVALID: a syntax error ("line 3, column 5: did not find expected key"), a key
 *   that is not a scalar, a duplicate key, an unknown anchor, or a value that does not fit its
 *   explicit tag (!!int, !!float, !!bool, !!null);
 * - AURORA_E_TOO_LARGE: a limit was exceeded ("line 9, column 3: too many nodes (alias
 *   expansion)"; the input check names no position);
 * - AURORA_E_NOMEM.
 */
int aurora_yaml_load(const char *text, size_t n, const aurora_yaml_limits *lim,
                     aurora_yaml_doc **out, char *errmsg, size_t errlen);

/* Wipes the scalars of *doc, frees it and sets *doc to NULL. Harmless on NULL. */
void aurora_yaml_free(aurora_yaml_doc **doc);

/* The value of key (a NUL-terminated string) in the mapping m, or NULL when m is not a mapping
 * or has no such key. */
const aurora_yaml_node *aurora_yaml_get(const aurora_yaml_node *m, const char *key);

/* "null", "boolean", "integer", "float", "string", "sequence" or "mapping". */
const char *aurora_yaml_type_name(aurora_yaml_type t);

/* ---- Lua helpers (yaml_lua.c) ---------------------------------------------------------- */

/*
 * Reads the limit options max_bytes, max_depth, max_nodes, max_scalar and max_expanded of the
 * options table at idx into lim, zeroing the fields not given (lim is all zero when the options
 * are absent or nil). extra names the one other option the caller accepts and reads itself
 * ("keep_nulls", "context"), or is NULL. Raises on an options value that is not a table, on an
 * unknown option, and on a limit that is not a positive integer or a max_depth above
 * AURORA_YAML_DEPTH_CEILING. Stack: unchanged; may raise.
 */
void aurora_yaml_read_limits(lua_State *L, int idx, const char *extra, aurora_yaml_limits *lim);

#endif
