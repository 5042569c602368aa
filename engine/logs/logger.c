/* engine-py-logger: writes a container's stdout and stderr to docker's
 * json-file log, on its own, so that output keeps flowing (and is kept)
 * while the engine is down. See engine/logs/DESIGN.md.
 *
 * Started by a containerd shim for a `binary://` log URI, as containerd
 * starts a logging binary: the container's stdout on fd 3, its stderr on
 * fd 4, a pipe on fd 5 that is closed once the log file is open.
 *
 * usage: engine-py-logger path FILE [max-size BYTES] [max-file N] [compress 0|1]
 *                         [format json-file|local] [flush-partial 0|1]
 *   key/value pairs in any order (containerd passes the URI's query from a
 *   Go map); max-size 0 (the default) never rotates; max-file 1 truncates;
 *   compress 1 gzips each rotated file (FILE.1.gz ...) in a child process,
 *   as dockerd's loggerutils does; format local writes dockerd's local
 *   driver's entries (size-framed protobuf LogEntry) instead of json-file's;
 *   flush-partial 1 (an interactive container's) writes what each read
 *   brings at once, a line without "\n" as a partial entry, so that a
 *   prompt reaches an attached terminal before the line is finished.
 *
 * Lines are split and encoded as dockerd's copier and json-file driver do
 * (moby daemon/logger/copier.go, jsonfilelog): a line is one entry with its
 * "\n"; a line longer than 16 KiB is split into 16 KiB entries without "\n"
 * that carry the time of its first part; what is left without "\n" at the
 * end of a stream is an entry without "\n". SIGTERM (containerd's shim
 * sends it on delete): what the pipes hold now is written, then exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define LINE_MAX_BYTES 16384 /* moby's copier buffer: a longer line is split */
#define OUT_SIZE (1 << 18)

struct stream {
    int fd;
    const char *name;
    char buf[LINE_MAX_BYTES];
    size_t n;
    struct timespec partial_at; /* time of the first part of a split line */
    int in_partial;
    int ordinal;          /* the local format's numbering of a split line's parts, from 1 */
    char partial_id[65];  /* and their common ID (moby's stringid: 32 random bytes in hex) */
};

static const char *log_path;
static long long max_size; /* 0: never rotate */
static int max_file = 1;
static int flush_partial;
static int compress_rotated;
static int local_format;
static pid_t compressor; /* the child gzipping FILE.1, 0 when none runs */
static struct timespec last_time; /* of the last entry in the log file: a gzip header's lastTime */
static int log_fd = -1;
static long long log_size;
static char out[OUT_SIZE + 8 * LINE_MAX_BYTES];
static size_t out_n;
static int write_failed;

static void die(const char *what) {
    fprintf(stderr, "engine-py-logger: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int open_log(int flags) {
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0640);
    struct stat st;
    log_size = log_fd >= 0 && fstat(log_fd, &st) == 0 ? st.st_size : 0;
    return log_fd;
}

/* Writes what is buffered; on an error (disk full, the log reopened after a
 * rotation but gone) it is dropped and said once: the pipes are drained
 * regardless, so the container never blocks, nor dies of a broken pipe. */
static void flush_out(void) {
    size_t done = 0;
    if (log_fd < 0)
        open_log(O_APPEND);
    while (done < out_n) {
        ssize_t w = write(log_fd, out + done, out_n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!write_failed)
                fprintf(stderr, "engine-py-logger: write %s: %s\n", log_path, strerror(errno));
            write_failed = 1;
            break;
        }
        done += (size_t)w;
    }
    log_size += (long long)done;
    out_n = 0;
}

/* Go's time.RFC3339Nano in UTC (trailing zeros of the fraction dropped)
 * into dst (at least 40 bytes); its length. */
static size_t format_time(char *dst, const struct timespec *t) {
    static time_t cached_sec = -1;
    static char cached[32];
    if (t->tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&t->tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = t->tv_sec;
    }
    size_t n = strlen(cached);
    memcpy(dst, cached, n);
    if (t->tv_nsec) {
        int digits = 9;
        long ns = t->tv_nsec;
        while (ns % 10 == 0) {
            ns /= 10;
            digits--;
        }
        n += (size_t)sprintf(dst + n, ".%0*ld", digits, ns);
    }
    dst[n++] = 'Z';
    dst[n] = '\0';
    return n;
}

/* FROM -> FROM.gz as dockerd's compressFile: gzip with the header's Extra
 * `{"lastTime":"..."}` (the time of the file's last entry, by which a
 * reader skips files older than its --since). Written aside and renamed,
 * so a reader finds either file whole; FROM goes after. */
static int gzip_file(const char *from, const char *last) {
    char to[PATH_MAX + 8], part[PATH_MAX + 16], extra[64];
    static unsigned char in[1 << 16], zout[1 << 16];
    snprintf(to, sizeof to, "%s.gz", from);
    snprintf(part, sizeof part, "%s.gz.part", from);
    int src = open(from, O_RDONLY | O_CLOEXEC);
    int dst = src < 0 ? -1 : open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (dst < 0)
        return -1;
    z_stream z = {0};
    gz_header head = {0};
    head.extra = (unsigned char *)extra;
    head.extra_len = (unsigned)snprintf(extra, sizeof extra, "{\"lastTime\":\"%s\"}", last);
    head.os = 255; /* as Go's gzip writer: unknown */
    int ok = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK &&
             deflateSetHeader(&z, &head) == Z_OK;
    int flush = Z_NO_FLUSH;
    while (ok && flush != Z_FINISH) {
        ssize_t r = read(src, in, sizeof in);
        if (r < 0 && errno == EINTR)
            continue;
        ok = r >= 0;
        flush = r == 0 ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = in;
        z.avail_in = r > 0 ? (unsigned)r : 0;
        do {
            z.next_out = zout;
            z.avail_out = sizeof zout;
            ok = ok && deflate(&z, flush) != Z_STREAM_ERROR;
            size_t have = sizeof zout - z.avail_out;
            ok = ok && write(dst, zout, have) == (ssize_t)have;
        } while (ok && z.avail_out == 0);
    }
    deflateEnd(&z);
    ok = close(dst) == 0 && ok && rename(part, to) == 0;
    close(src);
    if (!ok) {
        fprintf(stderr, "engine-py-logger: compressing %s: %s\n", from, strerror(errno));
        unlink(part);
        return -1;
    }
    return unlink(from);
}

/* LOG.1 gzipped by a child of ours, so that the pipes keep draining
 * meanwhile. `last` is the time of its last entry; unknown (nothing written
 * since this logger started), the file's mtime, which is never earlier. */
static void start_compressor(const struct timespec *last) {
    char rotated[PATH_MAX], stamp[40];
    struct stat st;
    snprintf(rotated, sizeof rotated, "%s.1", log_path);
    format_time(stamp, last->tv_sec || stat(rotated, &st) < 0 ? last : &st.st_mtim);
    pid_t pid = fork();
    if (pid == 0) {
        close_range(3, ~0U, 0); /* the pipes are the logger's alone */
        _exit(gzip_file(rotated, stamp) == 0 ? 0 : 1);
    }
    if (pid < 0)
        fprintf(stderr, "engine-py-logger: fork: %s: %s stays uncompressed\n", strerror(errno), rotated);
    compressor = pid > 0 ? pid : 0;
}

/* The last rotated file compressed: the next rotation waits for it, as
 * dockerd's does. Only a container that outpaces gzip ever waits here
 * (one file's compression at most); letting the log grow instead would
 * make each file, and each compression, longer than the last. */
static void wait_compressor(void) {
    while (compressor > 0 && waitpid(compressor, NULL, 0) < 0 && errno == EINTR)
        ;
    compressor = 0;
}

/* As dockerd's loggerutils: LOG.N-1 dropped, LOG.i -> LOG.i+1, LOG -> LOG.1
 * (with compress, the rotated files are LOG.i.gz and LOG.1 is compressed
 * after the rename); with max-file 1 the one file starts over, as a new file
 * (dockerd truncates it), so that a reader following it sees a rotation,
 * never a file that shrank under it. */
static void rotate(void) {
    char from[PATH_MAX], to[PATH_MAX];
    const char *ext = compress_rotated ? ".gz" : "";
    flush_out();
    wait_compressor();
    if (log_fd >= 0)
        close(log_fd);
    if (max_file >= 2) {
        snprintf(to, sizeof to, "%s.%d%s", log_path, max_file - 1, ext);
        unlink(to);
        for (int i = max_file - 1; i > 1; i--) {
            snprintf(to, sizeof to, "%s.%d%s", log_path, i, ext);
            snprintf(from, sizeof from, "%s.%d%s", log_path, i - 1, ext);
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", log_path);
        rename(log_path, to);
        if (compress_rotated)
            start_compressor(&last_time);
    } else {
        unlink(log_path);
    }
    open_log(O_TRUNC);
}

/* The length of the valid UTF-8 sequence at s (as Go's utf8.DecodeRune
 * accepts it: no overlongs, surrogates or values past U+10FFFF), or 0. */
static size_t utf8_valid(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (len < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

/* A JSON string body as moby's jsonlog writes one (Go's encoding/json rules):
 * \" \\ \n \r, other controls and < > & as \u00XX, U+2028/U+2029 escaped,
 * each byte of invalid UTF-8 as \ufffd. */
static void put_escaped(const unsigned char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    char *o = out + out_n;
    for (size_t i = 0; i < len;) {
        unsigned char b = s[i];
        if (b < 0x80) {
            if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
                *o++ = (char)b;
            } else if (b == '\\' || b == '"') {
                *o++ = '\\';
                *o++ = (char)b;
            } else if (b == '\n') {
                *o++ = '\\';
                *o++ = 'n';
            } else if (b == '\r') {
                *o++ = '\\';
                *o++ = 'r';
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[b >> 4];
                o[5] = hex[b & 0xF];
                o += 6;
            }
            i++;
            continue;
        }
        size_t size = utf8_valid(s + i, len - i);
        if (size == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i++;
        } else if (size == 3 && b == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
            memcpy(o, "\\u202", 5);
            o[5] = hex[s[i + 2] == 0xA8 ? 8 : 9];
            o += 6;
            i += 3;
        } else {
            memcpy(o, s + i, size);
            o += size;
            i += size;
        }
    }
    out_n = (size_t)(o - out);
}

static void put_bytes(const void *data, size_t len) {
    memcpy(out + out_n, data, len);
    out_n += len;
}

static void put(const char *s) {
    put_bytes(s, strlen(s));
}

/* json-file's entry: {"log":...,"stream":...,"time":...}\n, the line's
 * "\n" written back unless it is a part of a split line. */
static void put_json_entry(const struct stream *s, const char *line, size_t len, int newline,
                           const struct timespec *at) {
    char stamp[40];
    put("{\"log\":\"");
    put_escaped((const unsigned char *)line, len);
    if (newline)
        put("\\n");
    put("\",\"stream\":\"");
    put(s->name);
    put("\",\"time\":\"");
    put_bytes(stamp, format_time(stamp, at));
    put("\"}\n");
}

static size_t varint(unsigned char *o, uint64_t v) {
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        o[n++] = (unsigned char)(v | 0x80);
    o[n++] = (unsigned char)v;
    return n;
}

/* A length-delimited protobuf field: tag, length, bytes. */
static size_t field_bytes(unsigned char *o, int number, const void *data, size_t len) {
    size_t n = varint(o, (uint64_t)(number << 3 | 2));
    n += varint(o + n, len);
    memcpy(o + n, data, len);
    return n + len;
}

/* The local driver's entry: the LogEntry protobuf (source 1, time_nano 2,
 * line 3 without its "\n", partial 4, partial_log_metadata 5 {last 1, id 2,
 * ordinal 3}; proto3, so zero values are left out) between two big-endian
 * uint32s of its size, as moby's daemon/logger/local marshals it. */
static void put_local_entry(const struct stream *s, const char *line, size_t len, int partial, int last,
                            const struct timespec *at) {
    unsigned char meta[128], *o = (unsigned char *)out + out_n + 4;
    size_t n = 0, m = 0;
    n += field_bytes(o + n, 1, s->name, strlen(s->name));
    o[n++] = 2 << 3;
    n += varint(o + n, (uint64_t)((int64_t)at->tv_sec * 1000000000 + at->tv_nsec));
    if (len)
        n += field_bytes(o + n, 3, line, len);
    if (partial) {
        o[n++] = 4 << 3;
        o[n++] = 1;
        if (last) {
            meta[m++] = 1 << 3;
            meta[m++] = 1;
        }
        m += field_bytes(meta + m, 2, s->partial_id, strlen(s->partial_id));
        meta[m++] = 3 << 3;
        m += varint(meta + m, (uint64_t)s->ordinal);
        n += field_bytes(o + n, 5, meta, m);
    }
    unsigned char size[4] = {n >> 24, n >> 16, n >> 8, n};
    memcpy(out + out_n, size, 4);
    memcpy(o + n, size, 4);
    out_n += n + 8;
}

/* One entry, rotating first if the file is full (dockerd checks before each
 * write, so a file may pass max-size by one entry). `partial`: a part of a
 * split line, `last` its final part (which has the line's "\n"). */
static void emit(struct stream *s, const char *line, size_t len, int partial, int last, const struct timespec *at) {
    if (max_size > 0 && log_size + (long long)out_n >= max_size)
        rotate();
    if (local_format)
        put_local_entry(s, line, len, partial, last, at);
    else
        put_json_entry(s, line, len, !partial || last, at);
    last_time = *at;
    if (out_n >= OUT_SIZE)
        flush_out();
}

/* A new split line: its time, and for the local format an ID of its parts. */
static void begin_partial(struct stream *s) {
    unsigned char id[32];
    clock_gettime(CLOCK_REALTIME, &s->partial_at);
    s->in_partial = 1;
    s->ordinal = 0;
    if (local_format) {
        if (getrandom(id, sizeof id, 0) != sizeof id)
            memset(id, 0, sizeof id);
        for (size_t i = 0; i < sizeof id; i++)
            sprintf(s->partial_id + 2 * i, "%02x", id[i]);
    }
}

/* Entries for what the stream's buffer holds: every whole line, then a
 * 16 KiB part if the buffer is full without a newline, or the rest at EOF. */
static void drain_lines(struct stream *s, int eof) {
    size_t p = 0;
    char *nl;
    while ((nl = memchr(s->buf + p, '\n', s->n - p))) {
        size_t q = (size_t)(nl - (s->buf + p));
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        s->ordinal++;
        emit(s, s->buf + p, q, s->in_partial, 1, s->in_partial ? &s->partial_at : &now);
        s->in_partial = 0;
        p += q + 1;
    }
    if ((eof || flush_partial || (p == 0 && s->n == sizeof s->buf)) && p < s->n) {
        if (!s->in_partial)
            begin_partial(s);
        s->ordinal++;
        emit(s, s->buf + p, s->n - p, 1, 0, &s->partial_at);
        p = s->n;
    }
    memmove(s->buf, s->buf + p, s->n - p);
    s->n -= p;
}

/* One read; false at EOF or error (the stream is done), or when nothing is
 * there (non-blocking drain). */
static int read_some(struct stream *s) {
    ssize_t r = read(s->fd, s->buf + s->n, sizeof s->buf - s->n);
    if (r < 0 && errno == EINTR)
        return 1;
    if (r <= 0) {
        if (r < 0 && errno == EAGAIN)
            return 0;
        drain_lines(s, 1);
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    s->n += (size_t)r;
    drain_lines(s, 0);
    return 1;
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "path") == 0)
            log_path = argv[i + 1];
        else if (strcmp(argv[i], "max-size") == 0)
            max_size = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "max-file") == 0)
            max_file = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "flush-partial") == 0)
            flush_partial = strcmp(argv[i + 1], "1") == 0;
        else if (strcmp(argv[i], "compress") == 0)
            compress_rotated = strcmp(argv[i + 1], "1") == 0;
        else if (strcmp(argv[i], "format") == 0 && (!strcmp(argv[i + 1], "local") || !strcmp(argv[i + 1], "json-file")))
            local_format = strcmp(argv[i + 1], "local") == 0;
        else {
            fprintf(stderr, "engine-py-logger: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!log_path || argc % 2 == 0 || max_file < 1 || max_size < 0) {
        fprintf(stderr, "usage: engine-py-logger path FILE [max-size BYTES] [max-file N] [compress 0|1] "
                        "[format json-file|local] [flush-partial 0|1]\n");
        return 2;
    }
    /* Which fds we were given, before any fd of ours could take a free number. */
    static struct stream streams[2] = {{.fd = 3, .name = "stdout"}, {.fd = 4, .name = "stderr"}};
    for (int i = 0; i < 2; i++)
        if (fcntl(streams[i].fd, F_SETFD, FD_CLOEXEC) < 0)
            streams[i].fd = -1; /* not given: nothing to copy */
    int ready_fd = fcntl(5, F_GETFD) >= 0 ? 5 : -1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_DFL); /* an ignored SIGTERM (inherited) would never reach the signalfd */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sigfd < 0)
        die("signalfd");

    if (open_log(O_APPEND) < 0)
        die(log_path);
    char rotated[PATH_MAX];
    snprintf(rotated, sizeof rotated, "%s.1", log_path);
    if (compress_rotated && max_file >= 2 && access(rotated, F_OK) == 0) {
        static const struct timespec unknown;
        start_compressor(&unknown); /* left by a logger killed before it was compressed */
    }
    if (ready_fd >= 0)
        close(ready_fd); /* ready: the shim hands the container its pipes */

    while (streams[0].fd >= 0 || streams[1].fd >= 0) {
        struct pollfd fds[3] = {{streams[0].fd, POLLIN, 0}, {streams[1].fd, POLLIN, 0}, {sigfd, POLLIN, 0}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (fds[2].revents & POLLIN) {
            for (int i = 0; i < 2; i++) {
                if (streams[i].fd < 0)
                    continue;
                fcntl(streams[i].fd, F_SETFL, fcntl(streams[i].fd, F_GETFL) | O_NONBLOCK);
                while (read_some(&streams[i]))
                    ;
                if (streams[i].fd >= 0) {
                    drain_lines(&streams[i], 1);
                    close(streams[i].fd);
                    streams[i].fd = -1;
                }
            }
            break;
        }
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0 && fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                read_some(&streams[i]);
        flush_out();
    }
    flush_out();
    wait_compressor(); /* the log is whole, and no process of ours is left */
    return 0;
}
