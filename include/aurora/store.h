/*
 * store.h: the encrypted embedded secret store (module aurora.store). A store is a directory
 * holding one record file per path; each record is AES-256-GCM sealed under a 32-byte key with
 * the record's header and path as associated data, and replaced atomically (temporary file,
 * fsync, rename, fsync of the directory). Records carry a version number for check-and-set
 * writes in the manner of Vault KV v2; only the current version is kept. No Lua here.
 *
 * Threads: a store handle may be used by one thread at a time; any number of handles, in any
 * number of threads and processes, may share one directory. Writes (put, delete) are serialised
 * by a process-wide mutex and an flock on the store's lock file, so check-and-set holds across
 * threads and processes. Reads take no lock: a rename is atomic, so a reader sees the old record
 * or the new one, never a mixture.
 *
 * Messages written to errmsg name the path and what went wrong, never a value or the key.
 */
#ifndef AURORA_STORE_H
#define AURORA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "aurora/buf.h"

#define AURORA_STORE_KEY_LEN 32
#define AURORA_STORE_SEGMENTS_MAX 8          /* segments of a path */
#define AURORA_STORE_SEGMENT_MAX 128         /* bytes of a segment */
#define AURORA_STORE_VALUE_MAX (1024 * 1024) /* bytes of a value (the JSON text) */
#define AURORA_STORE_HEADER_LEN 28           /* "AUR1", version, created, updated */

typedef struct aurora_store aurora_store;

/* What a record says about itself. Times are Unix seconds. */
typedef struct aurora_store_meta {
    int64_t version; /* 1 for the first write, +1 for each write after it */
    int64_t created; /* time of the first write */
    int64_t updated; /* time of the latest write */
} aurora_store_meta;

/*
 * Decodes a key given as text: 64 hex digits (either case) or standard base64 of 32 bytes;
 * trailing whitespace (a newline at the end of a file) is ignored. Writes 32 bytes to key.
 * Returns 0 or AURORA_E_INVALID (key is wiped then).
 */
int aurora_store_key_parse(const char *text, size_t n, unsigned char key[AURORA_STORE_KEY_LEN]);

/*
 * Checks a path before it touches the filesystem: segments separated by "/", 1 to 8 of them,
 * each 1 to 128 bytes of [A-Za-z0-9._@-], not "." or "..", no leading or doubled "/". A segment
 * that names a folder (all but the last of a record path) may not end in ".rec", since records
 * are stored as "<last>.rec". With folder set the path names a folder for list: "" (the root) is
 * allowed and one trailing "/" is ignored. Returns 0 or AURORA_E_INVALID with the reason in
 * errmsg.
 */
int aurora_store_check_path(const char *path, int folder, char *errmsg, size_t errlen);

/*
 * Opens the store in dir, creating the directory (and its parents, mode 0700) if needed. key is
 * 32 bytes, copied; when it is NULL the key comes from AURORA_MASTER_KEY (as for
 * aurora_store_key_parse), else from the key file "<dir>.key" (dir without trailing slashes, so
 * data/secrets uses data/secrets.key), which is created on first use with 32 random bytes as hex,
 * mode 0600, atomically (an O_EXCL temporary file linked into place). A key file that group or
 * others may access is refused. Sets *out, which the caller closes with aurora_store_close.
 * Returns 0, or AURORA_E_INVALID (empty dir, a malformed AURORA_MASTER_KEY or key file),
 * AURORA_E_DENIED (permissions, or a key file with a too open mode), AURORA_E_IO,
 * AURORA_E_NOMEM or AURORA_E_INTERNAL, with a message in errmsg.
 */
int aurora_store_open(const char *dir, const unsigned char *key, aurora_store **out, char *errmsg,
                      size_t errlen);

/* Wipes the key, closes the store and sets *s to NULL. Harmless on NULL. */
void aurora_store_close(aurora_store **s);

/*
 * Writes n bytes (at most AURORA_STORE_VALUE_MAX) as the value of path. cas < 0 writes
 * unconditionally; cas == 0 writes only if the record is absent; cas > 0 only if its current
 * version is cas. The previous record, if any, must decrypt (its version is trusted only then).
 * On success writes the new record's meta to *meta (may be NULL). Returns 0, or
 * AURORA_E_INVALID (bad path, or a malformed existing record), AURORA_E_TOO_LARGE,
 * AURORA_E_CONFLICT (cas does not match), AURORA_E_CRYPTO (the existing record does not
 * decrypt), AURORA_E_DENIED, AURORA_E_IO, AURORA_E_NOMEM or AURORA_E_INTERNAL.
 */
int aurora_store_put(aurora_store *s, const char *path, const void *value, size_t n, int64_t cas,
                     aurora_store_meta *meta, char *errmsg, size_t errlen);

/*
 * Reads the value of path and appends it to value; give a buffer with secret set so it is wiped
 * when freed. On success writes *meta (may be NULL). Returns 0, or AURORA_E_NOT_FOUND (no such
 * record; no message), AURORA_E_INVALID (bad path, a truncated file, not a record),
 * AURORA_E_CRYPTO (wrong key, or the file was altered), AURORA_E_TOO_LARGE (the file, or more
 * than value->max), AURORA_E_DENIED, AURORA_E_IO, AURORA_E_NOMEM or AURORA_E_INTERNAL. value is
 * unchanged on failure.
 */
int aurora_store_get(aurora_store *s, const char *path, aurora_buf *value, aurora_store_meta *meta,
                     char *errmsg, size_t errlen);

/*
 * Removes the record of path, then the folders it leaves empty. Returns 0, or
 * AURORA_E_NOT_FOUND (there was no record; no message), AURORA_E_INVALID (bad path),
 * AURORA_E_DENIED, AURORA_E_IO.
 */
int aurora_store_delete(aurora_store *s, const char *path, char *errmsg, size_t errlen);

/*
 * Lists the folder prefix (see aurora_store_check_path; "" is the root): appends to out, in
 * byte order, one NUL-terminated name per entry, the record names as they are and subfolders
 * with a trailing "/" ("azure", "users/"), and sets *count. Files that are not records
 * (temporary files, the lock file) are skipped. A folder that does not exist lists as empty.
 * Returns 0, or AURORA_E_INVALID (bad prefix), AURORA_E_DENIED, AURORA_E_IO, AURORA_E_NOMEM or
 * the error of aurora_buf_append (out unchanged on failure).
 */
int aurora_store_list(aurora_store *s, const char *prefix, aurora_buf *out, size_t *count,
                      char *errmsg, size_t errlen);

#endif
