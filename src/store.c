/*
 * store.c: the encrypted embedded secret store (see store.h). It maps a path "users/42/azure" to
 * the file DIR/users/42/azure.rec and keeps each record sealed with AES-256-GCM from crypto.c.
 * It must never write a value in the clear (not to a file, not to errmsg), never follow a path
 * out of the store directory, and never replace a record other than by an atomic rename.
 *
 * Record file: a 28-byte header ("AUR1", version, created, updated as big-endian 64-bit
 * integers) followed by the sealed box (nonce, ciphertext, tag) of the value. The header and the
 * path are the associated data, so a record moved to another path, or a header edited to fake a
 * version, does not decrypt.
 *
 * Names the store makes for itself hold a "~" ("~lock", "azure.rec~Ab12Cd"), which no path
 * segment can, so they never collide with a folder or a record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/store.h"

#define MAGIC "AUR1"
#define REC_SUFFIX ".rec"
#define REC_SUFFIX_LEN 4
#define LOCK_NAME "~lock"
#define TMP_SUFFIX "~XXXXXX"
#define RECORD_MAX (AURORA_STORE_HEADER_LEN + AURORA_STORE_VALUE_MAX + AURORA_CRYPTO_SEAL_OVERHEAD)
#define LIST_MAX (16 * 1024 * 1024)
#define KEY_TEXT_MAX 128

struct aurora_store {
    unsigned char key[AURORA_STORE_KEY_LEN];
    char *dir;   /* without trailing slashes */
    int lock_fd; /* DIR/~lock, flocked around every write */
};

/* Serialises writes of every store in this process; the flock does it across processes. Writes
 * are rare (a login, a disconnect), so one mutex for all stores costs nothing. */
static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 4, 5))) static int say(char *errmsg, size_t errlen, int rc,
                                                     const char *fmt, ...)
{
    va_list ap;

    if (errmsg && errlen) {
        va_start(ap, fmt);
        vsnprintf(errmsg, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int errno_code(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return AURORA_E_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return AURORA_E_DENIED;
    case ENOMEM:
        return AURORA_E_NOMEM;
    default:
        return AURORA_E_IO;
    }
}

/* ---- paths ------------------------------------------------------------------------------ */

static int segment_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '-';
}

/* Why the segment p[0..n) is not allowed, or NULL when it is. */
static const char *segment_problem(const char *p, size_t n, int is_folder)
{
    size_t i;

    if (n == 0)
        return "it has an empty segment";
    if (n > AURORA_STORE_SEGMENT_MAX)
        return "a segment is longer than 128 bytes";
    for (i = 0; i < n; i++)
        if (!segment_char((unsigned char)p[i]))
            return "it holds a character other than A-Z a-z 0-9 . _ @ -";
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
        return "'.' and '..' are not allowed as segments";
    if (is_folder && n >= REC_SUFFIX_LEN &&
        memcmp(p + n - REC_SUFFIX_LEN, REC_SUFFIX, REC_SUFFIX_LEN) == 0)
        return "a folder name may not end in '.rec'";
    return NULL;
}

int aurora_store_check_path(const char *path, int folder, char *errmsg, size_t errlen)
{
    const char *why = NULL;
    size_t n, i, start = 0, segs = 0;

    if (!path)
        return say(errmsg, errlen, AURORA_E_INVALID, "invalid path: none given");
    n = strlen(path);
    if (folder && n == 0)
        return 0;
    if (path[0] == '/')
        return say(errmsg, errlen, AURORA_E_INVALID, "invalid path: it starts with '/'");
    if (folder && path[n - 1] == '/')
        n--;
    if (n == 0)
        return say(errmsg, errlen, AURORA_E_INVALID, "invalid path: it is empty");
    for (i = 0; i <= n && !why; i++) {
        if (i < n && path[i] != '/')
            continue;
        if (++segs > AURORA_STORE_SEGMENTS_MAX)
            why = "it has more than 8 segments";
        else
            why = segment_problem(path + start, i - start, folder || i < n);
        start = i + 1;
    }
    if (why)
        return say(errmsg, errlen, AURORA_E_INVALID, "invalid path: %s", why);
    return 0;
}

/* a + b + c in new memory, or NULL. */
static char *concat3(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = malloc(na + nb + nc + 1);

    if (!s)
        return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

/* ---- files ------------------------------------------------------------------------------ */

/* Writes all n bytes. Returns 0 or an errno. */
static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to n bytes, stopping at end of file; sets *got. Returns 0 or an errno. */
static int read_all(int fd, void *p, size_t n, size_t *got)
{
    unsigned char *b = p;
    size_t off = 0;

    while (off < n) {
        ssize_t r = read(fd, b + off, n - off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        off += (size_t)r;
    }
    *got = off;
    return 0;
}

/* fsyncs the directory holding file (the text before its last '/'), so a rename, link, unlink
 * or mkdir in it survives a crash. Returns 0 or an errno. */
static int sync_parent(const char *file)
{
    const char *slash = strrchr(file, '/');
    char *dir;
    int fd, e = 0;

    if (!slash)
        dir = strdup(".");
    else if (slash == file)
        dir = strdup("/");
    else
        dir = strndup(file, (size_t)(slash - file));
    if (!dir)
        return ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        e = errno;
    else if (fsync(fd) != 0 && errno != EINVAL)
        e = errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return e;
}

/* Creates dir and its missing parents with mode 0700. Returns 0 or an errno (ENOTDIR when dir
 * exists but is not a directory). */
static int make_dirs(const char *dir)
{
    char *p, *copy = strdup(dir);
    struct stat st;
    int e = 0;

    if (!copy)
        return ENOMEM;
    for (p = copy + 1; *p && !e; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            e = errno;
        *p = '/';
    }
    if (!e && mkdir(copy, 0700) != 0 && errno != EEXIST)
        e = errno;
    if (!e && stat(copy, &st) != 0)
        e = errno;
    else if (!e && !S_ISDIR(st.st_mode))
        e = ENOTDIR;
    free(copy);
    return e;
}

/* ---- keys ------------------------------------------------------------------------------- */

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int aurora_store_key_parse(const char *text, size_t n, unsigned char key[AURORA_STORE_KEY_LEN])
{
    unsigned char tmp[64];
    size_t i, len = 0;
    int rc = AURORA_E_INVALID;

    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' ||
                     text[n - 1] == '\t'))
        n--;
    if (n == 2 * AURORA_STORE_KEY_LEN) {
        for (i = 0; i < AURORA_STORE_KEY_LEN; i++) {
            int hi = hex_value((unsigned char)text[2 * i]);
            int lo = hex_value((unsigned char)text[2 * i + 1]);

            if (hi < 0 || lo < 0)
                goto out;
            tmp[i] = (unsigned char)(hi << 4 | lo);
        }
        len = AURORA_STORE_KEY_LEN;
    } else if (n > 64 || aurora_crypto_b64_decode(text, n, AURORA_B64_STD, tmp, &len) != 0) {
        goto out;
    }
    if (len != AURORA_STORE_KEY_LEN)
        goto out;
    memcpy(key, tmp, AURORA_STORE_KEY_LEN);
    rc = 0;
out:
    aurora_wipe(tmp, sizeof(tmp));
    if (rc)
        aurora_wipe(key, AURORA_STORE_KEY_LEN);
    return rc;
}

/* Opens file for reading, refusing links and anything but a regular file; `what` names it in
 * messages ("key file /x", "record 'a/b'"). Sets *fd and *st and returns 0; AURORA_E_NOT_FOUND
 * (no message) when it does not exist; else an error with a message (nothing left open). */
static int open_regular(const char *file, const char *what, int *fd, struct stat *st,
                        char *errmsg, size_t errlen)
{
    int f = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

    if (f < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return AURORA_E_NOT_FOUND;
        return say(errmsg, errlen, errno_code(errno), "cannot open %s: %s", what,
                   strerror(errno));
    }
    if (fstat(f, st) != 0)
        rc = say(errmsg, errlen, AURORA_E_IO, "cannot stat %s: %s", what, strerror(errno));
    else if (!S_ISREG(st->st_mode))
        rc = say(errmsg, errlen, AURORA_E_INVALID, "%s is not a regular file", what);
    if (rc) {
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}


/* Reads the key file at path. Returns 0, AURORA_E_NOT_FOUND (no file; no message) or an error
 * with a message. */
static int read_key_file(const char *path, unsigned char *key, char *errmsg, size_t errlen)
{
    char text[KEY_TEXT_MAX], what[4200];
    struct stat st;
    size_t n = 0;
    int fd, e, rc;

    snprintf(what, sizeof(what), "key file %s", path);
    rc = open_regular(path, what, &fd, &st, errmsg, errlen);
    if (rc)
        return rc;
    if (st.st_mode & 077) {
        rc = say(errmsg, errlen, AURORA_E_DENIED,
                 "key file %s may be read by group or others (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        goto out;
    }
    e = read_all(fd, text, sizeof(text), &n);
    if (e) {
        rc = say(errmsg, errlen, AURORA_E_IO, "cannot read key file %s: %s", path, strerror(e));
        goto out;
    }
    if (aurora_store_key_parse(text, n, key) != 0)
        rc = say(errmsg, errlen, AURORA_E_INVALID,
                 "key file %s does not hold 64 hex digits or base64 of 32 bytes", path);
out:
    aurora_wipe(text, sizeof(text));
    close(fd);
    return rc;
}

/* Creates the key file at path with a new random key: an O_EXCL temporary file, written and
 * fsynced, then linked to path, which fails rather than replace a key file another thread or
 * process made meanwhile. Returns 0, AURORA_E_CONFLICT (someone else's file is there now; no
 * message) or an error with a message. */
static int create_key_file(const char *path, unsigned char *key, char *errmsg, size_t errlen)
{
    char text[2 * AURORA_STORE_KEY_LEN + 2];
    char *tmp = concat3(path, TMP_SUFFIX, "");
    int fd = -1, e = 0, rc = 0;

    if (!tmp)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    if (aurora_crypto_random(key, AURORA_STORE_KEY_LEN) != 0) {
        rc = say(errmsg, errlen, AURORA_E_INTERNAL, "cannot generate a key");
        goto out;
    }
    aurora_crypto_hex(key, AURORA_STORE_KEY_LEN, text);
    text[2 * AURORA_STORE_KEY_LEN] = '\n';
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        goto out;
    }
    if (fchmod(fd, 0600) != 0)
        e = errno;
    if (!e)
        e = write_all(fd, text, 2 * AURORA_STORE_KEY_LEN + 1);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && link(tmp, path) != 0)
        e = errno;
    unlink(tmp);
    if (e == EEXIST) {
        e = 0;
        rc = AURORA_E_CONFLICT;
    } else if (!e) {
        e = sync_parent(path);
    }
out:
    if (e)
        rc = say(errmsg, errlen, errno_code(e) == AURORA_E_NOT_FOUND ? AURORA_E_IO : errno_code(e),
                 "cannot create key file %s: %s", path, strerror(e));
    if (rc)
        aurora_wipe(key, AURORA_STORE_KEY_LEN);
    aurora_wipe(text, sizeof(text));
    free(tmp);
    return rc;
}

/* Finds the key when the caller gave none: AURORA_MASTER_KEY, else the key file. */
static int load_key(const char *dir, unsigned char *key, char *errmsg, size_t errlen)
{
    const char *env = getenv("AURORA_MASTER_KEY");
    char *path;
    int rc;

    if (env && *env) {
        if (aurora_store_key_parse(env, strlen(env), key) != 0)
            return say(errmsg, errlen, AURORA_E_INVALID,
                       "AURORA_MASTER_KEY must be 64 hex digits or base64 of 32 bytes");
        return 0;
    }
    path = concat3(dir, ".key", "");
    if (!path)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    rc = read_key_file(path, key, errmsg, errlen);
    if (rc == AURORA_E_NOT_FOUND)
        rc = create_key_file(path, key, errmsg, errlen);
    if (rc == AURORA_E_CONFLICT)
        rc = read_key_file(path, key, errmsg, errlen);
    if (rc == AURORA_E_NOT_FOUND)
        rc = say(errmsg, errlen, AURORA_E_IO, "key file %s vanished while it was created", path);
    free(path);
    return rc;
}

/* ---- open and close --------------------------------------------------------------------- */

int aurora_store_open(const char *dir, const unsigned char *key, aurora_store **out, char *errmsg,
                      size_t errlen)
{
    aurora_store *s = NULL;
    const char *env;
    char *lock = NULL;
    size_t n;
    int e, use_env, rc = 0;

    n = dir ? strlen(dir) : 0;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || (n == 1 && dir[0] == '/'))
        return say(errmsg, errlen, AURORA_E_INVALID, "the store directory must not be empty or /");
    s = calloc(1, sizeof(*s));
    if (s) {
        s->lock_fd = -1;
        s->dir = strndup(dir, n);
    }
    if (!s || !s->dir) {
        rc = say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    env = getenv("AURORA_MASTER_KEY");
    use_env = !key && env && *env;
    if (key)
        memcpy(s->key, key, AURORA_STORE_KEY_LEN);
    else if (use_env)
        rc = load_key(s->dir, s->key, errmsg, errlen); /* a bad key fails before any mkdir */
    if (rc)
        goto out;
    e = make_dirs(s->dir);
    if (e) {
        rc = say(errmsg, errlen, errno_code(e) == AURORA_E_NOT_FOUND ? AURORA_E_IO : errno_code(e),
                 "cannot create store directory %s: %s", s->dir, strerror(e));
        goto out;
    }
    if (!key && !use_env)
        rc = load_key(s->dir, s->key, errmsg, errlen);
    if (rc)
        goto out;
    lock = concat3(s->dir, "/", LOCK_NAME);
    if (!lock) {
        rc = say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        rc = say(errmsg, errlen,
                 errno_code(errno) == AURORA_E_NOT_FOUND ? AURORA_E_IO : errno_code(errno),
                 "cannot open lock file %s: %s", lock, strerror(errno));
out:
    free(lock);
    if (rc)
        aurora_store_close(&s);
    else
        *out = s;
    return rc;
}

void aurora_store_close(aurora_store **s)
{
    if (!s || !*s)
        return;
    aurora_wipe((*s)->key, sizeof((*s)->key));
    if ((*s)->lock_fd >= 0)
        close((*s)->lock_fd);
    free((*s)->dir);
    free(*s);
    *s = NULL;
}

/* ---- records ---------------------------------------------------------------------------- */

static void put_be64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The associated data of a record: its header, then its path. Caller frees. */
static unsigned char *make_aad(const unsigned char *header, const char *path, size_t *alen)
{
    size_t n = strlen(path);
    unsigned char *aad = malloc(AURORA_STORE_HEADER_LEN + n);

    if (!aad)
        return NULL;
    memcpy(aad, header, AURORA_STORE_HEADER_LEN);
    memcpy(aad + AURORA_STORE_HEADER_LEN, path, n);
    *alen = AURORA_STORE_HEADER_LEN + n;
    return aad;
}

/* The file of a record: DIR/path.rec. Caller frees; NULL when out of memory. */
static char *record_file(const aurora_store *s, const char *path)
{
    char *rel = concat3("/", path, REC_SUFFIX), *file;

    if (!rel)
        return NULL;
    file = concat3(s->dir, rel, "");
    free(rel);
    return file;
}

/*
 * Reads and decrypts the record file of path. Appends the value to value when it is not NULL
 * and writes *meta. Returns 0, AURORA_E_NOT_FOUND (no message) or an error with a message.
 */
static int load_record(aurora_store *s, const char *path, const char *file, aurora_buf *value,
                       aurora_store_meta *meta, char *errmsg, size_t errlen)
{
    unsigned char *raw = NULL, *plain = NULL, *aad = NULL;
    size_t n = 0, plen = 0, alen = 0;
    struct stat st;
    char what[1200];
    int fd, e, rc;

    snprintf(what, sizeof(what), "record '%s'", path);
    rc = open_regular(file, what, &fd, &st, errmsg, errlen);
    if (rc)
        return rc;
    if (st.st_size > RECORD_MAX) {
        rc = say(errmsg, errlen, AURORA_E_TOO_LARGE,
                 "record '%s' is larger than any record the store writes", path);
        goto out;
    }
    raw = malloc((size_t)st.st_size + 1);
    if (!raw) {
        rc = say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    e = read_all(fd, raw, (size_t)st.st_size, &n);
    if (e) {
        rc = say(errmsg, errlen, AURORA_E_IO, "cannot read record '%s': %s", path, strerror(e));
        goto out;
    }
    if (n < AURORA_STORE_HEADER_LEN + AURORA_CRYPTO_SEAL_OVERHEAD) {
        rc = say(errmsg, errlen, AURORA_E_INVALID,
                 "record '%s' is truncated (%zu bytes, fewer than any record has)", path, n);
        goto out;
    }
    if (memcmp(raw, MAGIC, 4) != 0) {
        rc = say(errmsg, errlen, AURORA_E_INVALID,
                 "record '%s' is not an aurora store record (bad magic)", path);
        goto out;
    }
    aad = make_aad(raw, path, &alen);
    plain = malloc(n - AURORA_STORE_HEADER_LEN - AURORA_CRYPTO_SEAL_OVERHEAD + 1);
    if (!aad || !plain) {
        rc = say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    rc = aurora_crypto_open(s->key, raw + AURORA_STORE_HEADER_LEN, n - AURORA_STORE_HEADER_LEN, aad,
                            alen, plain, &plen);
    if (rc == AURORA_E_CRYPTO) {
        say(errmsg, errlen, rc,
            "record '%s' does not decrypt: the key is wrong, or the file was altered or "
            "truncated",
            path);
        goto out;
    }
    if (rc) {
        say(errmsg, errlen, rc, "cannot decrypt record '%s'", path);
        goto out;
    }
    if (value)
        rc = aurora_buf_append(value, plain, plen);
    if (rc) {
        say(errmsg, errlen, rc, "the value of '%s' does not fit the buffer", path);
        goto out;
    }
    if (meta) {
        meta->version = (int64_t)get_be64(raw + 4);
        meta->created = (int64_t)get_be64(raw + 12);
        meta->updated = (int64_t)get_be64(raw + 20);
    }
out:
    if (plain) {
        aurora_wipe(plain, plen);
        free(plain);
    }
    free(aad);
    free(raw);
    close(fd);
    return rc;
}

/* Seals the value into a new record and puts it in place of file atomically. */
static int write_record(aurora_store *s, const char *path, const char *file, const void *value,
                        size_t n, const aurora_store_meta *m, char *errmsg, size_t errlen)
{
    unsigned char header[AURORA_STORE_HEADER_LEN], *aad = NULL, *rec = NULL;
    size_t alen = 0, reclen = AURORA_STORE_HEADER_LEN + n + AURORA_CRYPTO_SEAL_OVERHEAD;
    char *tmp = NULL;
    int fd = -1, e = 0, rc = 0;

    memcpy(header, MAGIC, 4);
    put_be64(header + 4, (uint64_t)m->version);
    put_be64(header + 12, (uint64_t)m->created);
    put_be64(header + 20, (uint64_t)m->updated);
    aad = make_aad(header, path, &alen);
    rec = malloc(reclen);
    tmp = concat3(file, TMP_SUFFIX, "");
    if (!aad || !rec || !tmp) {
        rc = say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(rec, header, AURORA_STORE_HEADER_LEN);
    rc = aurora_crypto_seal(s->key, value, n, aad, alen, rec + AURORA_STORE_HEADER_LEN);
    if (rc) {
        say(errmsg, errlen, rc, "cannot seal the value of '%s'", path);
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        goto out;
    }
    if (fchmod(fd, 0600) != 0)
        e = errno;
    if (!e)
        e = write_all(fd, rec, reclen);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, file) != 0)
        e = errno;
    if (e)
        unlink(tmp);
    else
        e = sync_parent(file);
out:
    if (e)
        rc = say(errmsg, errlen, errno_code(e) == AURORA_E_NOT_FOUND ? AURORA_E_IO : errno_code(e),
                 "cannot write record '%s': %s", path, strerror(e));
    free(tmp);
    free(rec);
    free(aad);
    return rc;
}

/* Creates the folders of path (all but its last segment) under the store directory. */
static int make_folders(aurora_store *s, const char *path, char *errmsg, size_t errlen)
{
    char *full = concat3(s->dir, "/", path);
    char *p;
    int e = 0;

    if (!full)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    for (p = full + strlen(s->dir) + 1; *p && !e; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(full, 0700) == 0)
            e = sync_parent(full);
        else if (errno != EEXIST)
            e = errno;
        *p = '/';
    }
    free(full);
    if (e)
        return say(errmsg, errlen,
                   errno_code(e) == AURORA_E_NOT_FOUND ? AURORA_E_IO : errno_code(e),
                   "cannot create the folders of '%s': %s", path, strerror(e));
    return 0;
}

/* Takes the write lock: the process-wide mutex, then the flock of the store's lock file. */
static int write_lock(aurora_store *s, char *errmsg, size_t errlen)
{
    pthread_mutex_lock(&write_mutex);
    while (flock(s->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            pthread_mutex_unlock(&write_mutex);
            return say(errmsg, errlen, AURORA_E_IO, "cannot lock the store: %s", strerror(errno));
        }
    }
    return 0;
}

static void write_unlock(aurora_store *s)
{
    flock(s->lock_fd, LOCK_UN);
    pthread_mutex_unlock(&write_mutex);
}

int aurora_store_put(aurora_store *s, const char *path, const void *value, size_t n, int64_t cas,
                     aurora_store_meta *meta, char *errmsg, size_t errlen)
{
    aurora_store_meta old = {0, 0, 0}, m;
    char *file = NULL;
    int rc, locked = 0;

    rc = aurora_store_check_path(path, 0, errmsg, errlen);
    if (rc)
        return rc;
    if (n > AURORA_STORE_VALUE_MAX)
        return say(errmsg, errlen, AURORA_E_TOO_LARGE, "the value of '%s' is larger than %d bytes",
                   path, AURORA_STORE_VALUE_MAX);
    file = record_file(s, path);
    if (!file)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    rc = write_lock(s, errmsg, errlen);
    if (rc)
        goto out;
    locked = 1;
    rc = load_record(s, path, file, NULL, &old, errmsg, errlen);
    if (rc && rc != AURORA_E_NOT_FOUND)
        goto out;
    if (rc == AURORA_E_NOT_FOUND && cas > 0) {
        rc = say(errmsg, errlen, AURORA_E_CONFLICT,
                 "check-and-set failed: '%s' does not exist, cas=%lld expected version %lld", path,
                 (long long)cas, (long long)cas);
        goto out;
    }
    if (rc == 0 && cas >= 0 && old.version != cas) {
        rc = say(errmsg, errlen, AURORA_E_CONFLICT,
                 "check-and-set failed: '%s' is at version %lld, cas=%lld", path,
                 (long long)old.version, (long long)cas);
        goto out;
    }
    m.updated = (int64_t)time(NULL);
    m.created = rc == 0 ? old.created : m.updated;
    m.version = rc == 0 ? old.version + 1 : 1;
    rc = make_folders(s, path, errmsg, errlen);
    if (rc)
        goto out;
    rc = write_record(s, path, file, value, n, &m, errmsg, errlen);
    if (rc)
        goto out;
    if (meta)
        *meta = m;
out:
    if (locked)
        write_unlock(s);
    free(file);
    return rc;
}

int aurora_store_get(aurora_store *s, const char *path, aurora_buf *value, aurora_store_meta *meta,
                     char *errmsg, size_t errlen)
{
    char *file;
    int rc;

    rc = aurora_store_check_path(path, 0, errmsg, errlen);
    if (rc)
        return rc;
    file = record_file(s, path);
    if (!file)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    rc = load_record(s, path, file, value, meta, errmsg, errlen);
    free(file);
    return rc;
}

int aurora_store_delete(aurora_store *s, const char *path, char *errmsg, size_t errlen)
{
    char *file = NULL, *slash;
    size_t root;
    int rc;

    rc = aurora_store_check_path(path, 0, errmsg, errlen);
    if (rc)
        return rc;
    file = record_file(s, path);
    if (!file)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    rc = write_lock(s, errmsg, errlen);
    if (rc)
        goto out;
    if (unlink(file) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = AURORA_E_NOT_FOUND;
        else
            rc = say(errmsg, errlen, errno_code(errno), "cannot delete record '%s': %s", path,
                     strerror(errno));
    } else {
        sync_parent(file);
        /* Remove the folders the record leaves empty, deepest first; stop at one that is not. */
        root = strlen(s->dir);
        for (;;) {
            slash = strrchr(file, '/');
            if (!slash || (size_t)(slash - file) <= root)
                break;
            *slash = '\0';
            if (rmdir(file) != 0)
                break;
            sync_parent(file);
        }
    }
    write_unlock(s);
out:
    free(file);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int aurora_store_list(aurora_store *s, const char *prefix, aurora_buf *out, size_t *count,
                      char *errmsg, size_t errlen)
{
    char **names = NULL, *folder = NULL;
    size_t n = 0, cap = 0, i, plen;
    aurora_buf b;
    struct dirent *ent;
    DIR *d = NULL;
    int rc;

    aurora_buf_init(&b, LIST_MAX);
    rc = aurora_store_check_path(prefix, 1, errmsg, errlen);
    if (rc)
        return rc;
    plen = strlen(prefix);
    folder = concat3(s->dir, "/", prefix);
    if (!folder)
        return say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
    if (plen && folder[strlen(folder) - 1] == '/')
        folder[strlen(folder) - 1] = '\0';
    d = opendir(folder);
    if (!d) {
        if (errno != ENOENT && errno != ENOTDIR)
            rc = say(errmsg, errlen, errno_code(errno), "cannot list '%s': %s", prefix,
                     strerror(errno));
        goto done;
    }
    for (;;) {
        struct stat st;
        size_t len;
        char *name;

        ent = readdir(d);
        if (!ent)
            break;
        len = strlen(ent->d_name);
        if (fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed meanwhile */
        if (S_ISDIR(st.st_mode) && !segment_problem(ent->d_name, len, 1))
            name = concat3(ent->d_name, "/", "");
        else if (S_ISREG(st.st_mode) && len > REC_SUFFIX_LEN &&
                 strcmp(ent->d_name + len - REC_SUFFIX_LEN, REC_SUFFIX) == 0 &&
                 !segment_problem(ent->d_name, len - REC_SUFFIX_LEN, 0))
            name = strndup(ent->d_name, len - REC_SUFFIX_LEN);
        else
            continue;
        if (name && n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            char **grown = realloc(names, ncap * sizeof(*names));

            if (!grown) {
                free(name);
                name = NULL;
            } else {
                names = grown;
                cap = ncap;
            }
        }
        if (!name) {
            rc = say(errmsg, errlen, AURORA_E_NOMEM, "out of memory");
            goto done;
        }
        names[n++] = name;
    }
    if (n)
        qsort(names, n, sizeof(*names), compare_names);
    for (i = 0; i < n && !rc; i++)
        rc = aurora_buf_append(&b, names[i], strlen(names[i]) + 1);
    if (!rc && b.len)
        rc = aurora_buf_append(out, b.data, b.len);
    if (rc)
        say(errmsg, errlen, rc, "the listing of '%s' is too large", prefix);
done:
    if (!rc)
        *count = n;
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d)
        closedir(d);
    free(folder);
    aurora_buf_free(&b);
    return rc;
}
