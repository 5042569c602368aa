/* containerd-py-shim: starts one process of a task with the runtime binary,
 * then reaps it and records its exit status (see containerd_py/tasks/DESIGN.md).
 *
 * In C because one of these runs beside every container for its whole life:
 * a CPython process costs some 6 MB of private memory, this a few hundred KB.
 *
 * usage: containerd-py-shim ID BUNDLE NAME RUNTIME RUNTIME_ROOT TERMINAL STDIN STDOUT STDERR NO_PIVOT
 *   NAME is "init" (runtime create) or "exec-<id>" (runtime exec --detach
 *   --process BUNDLE/NAME.process.json); TERMINAL and NO_PIVOT are 0 or 1.
 * Starts once a byte arrives on stdin: the daemon has recorded this shim.
 * Reports one JSON line on the pipe that was its stdout, {"pid": N} once the
 * process exists or {"error": "..."}, then closes it; a daemon restarted
 * before that reads the report from the same pipe (via /proc). Files in
 * BUNDLE: NAME.pid (the runtime's --pid-file), NAME.exit ({"pid", "status",
 * "exited_at"}: temp, rename), NAME.winsize ("WIDTH HEIGHT", applied
 * on SIGWINCH).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RELAY_DRAIN_MS 5000 /* the last output of a terminal, after the process exited */
#define LOGGER_READY_MS 10000 /* containerd's wait for a logging binary */
#define LOGGER_STOP_MS 12000  /* and for it to exit after SIGTERM (binaryIOProcTermTimeout) */

static const char *bundle, *name;
static pid_t logger_pid; /* a binary:// log URI's logging binary, while it runs */

static void path_of(char *out, const char *suffix) {
    snprintf(out, PATH_MAX, "%s/%s.%s", bundle, name, suffix);
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void json_escape(char *out, size_t size, const char *in) {
    size_t n = 0;
    for (; *in && n + 7 < size; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

static int report_fd = -1;

static void report(const char *fmt, ...) {
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(report_fd, line, strlen(line)) < 0) {
        /* the daemon is gone: nothing to tell */
    }
    close(report_fd);
    report_fd = -1;
}

static void fail(const char *fmt, ...) {
    char message[4096], escaped[8000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_escape(escaped, sizeof escaped, message);
    report("{\"error\": \"%s\"}\n", escaped);
    exit(1);
}

/* FIFO opens never block on a client slow to open its end: O_RDWR for the
 * output ones; stdin non-blocking (no writer yet is fine), then blocking.
 * An output may be a file:// URI (ctr's --log-uri): the file, appended to. */
static int open_stdio(const char *path, int write_side) {
    int fd;
    if (!*path)
        return open("/dev/null", O_RDWR | O_CLOEXEC);
    if (strncmp(path, "file://", 7) == 0) {
        if (!write_side)
            fail("stdin cannot be a log URI: %s", path);
        fd = open(path + 7, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    } else if (strstr(path, "://")) {
        fail("unsupported IO URI scheme: %s", path);
        return -1;
    } else if (write_side) {
        fd = open(path, O_RDWR | O_CLOEXEC);
    } else {
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    if (fd < 0)
        fail("open %s: %s", path, strerror(errno));
    return fd;
}

/* %XX and '+' decoded in place, as Go's url.QueryUnescape. */
static void unescape(char *s, int plus) {
    char *o = s;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = plus && *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
}

/* A binary:// log URI (ctr's --log-uri), as containerd's shim runs one: the
 * program at the URI's path with the query's keys and values as arguments,
 * CONTAINER_ID and CONTAINER_NAMESPACE (the bundle's parent directory) in
 * its environment, the container's stdout on fd 3, stderr on fd 4, and a
 * pipe on fd 5 that it closes (or writes to) once ready. out and err get
 * the write ends for the container. */
static void start_logger(const char *uri, const char *id, int *out, int *err) {
    static char spec[PATH_MAX * 2], env_id[PATH_MAX + 32], env_ns[PATH_MAX + 32];
    char *argv[64];
    int argc = 0;
    snprintf(spec, sizeof spec, "%s", uri + strlen("binary://"));
    char *path = strchr(spec, '/'), *query = strchr(spec, '?');
    if (query)
        *query++ = '\0';
    if (!path)
        fail("log URI without a path: %s", uri);
    unescape(path, 0);
    argv[argc++] = path;
    for (char *pair = query ? strtok(query, "&") : NULL; pair && argc < 62; pair = strtok(NULL, "&")) {
        char *value = strchr(pair, '=');
        if (value)
            *value++ = '\0';
        unescape(pair, 1);
        argv[argc++] = pair;
        if (value) {
            unescape(value, 1);
            argv[argc++] = value;
        }
    }
    argv[argc] = NULL;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", bundle);
    char *cut = strrchr(parent, '/');
    if (cut)
        *cut = '\0';
    snprintf(env_id, sizeof env_id, "CONTAINER_ID=%s", id);
    snprintf(env_ns, sizeof env_ns, "CONTAINER_NAMESPACE=%s", strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent);
    char *envp[] = {env_id, env_ns, NULL};

    int o[2], e[2], ready[2];
    if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
        fail("log pipes: %s", strerror(errno));
    logger_pid = fork();
    if (logger_pid < 0)
        fail("fork: %s", strerror(errno));
    if (logger_pid == 0) {
        int given[3] = {fcntl(o[0], F_DUPFD_CLOEXEC, 10), fcntl(e[0], F_DUPFD_CLOEXEC, 10),
                        fcntl(ready[1], F_DUPFD_CLOEXEC, 10)};
        for (int i = 0; i < 3; i++)
            if (given[i] < 0 || dup2(given[i], 3 + i) < 0)
                _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        execve(path, argv, envp);
        _exit(127);
    }
    close(o[0]);
    close(e[0]);
    close(ready[1]);
    struct pollfd p = {ready[0], POLLIN, 0};
    char byte;
    if (poll(&p, 1, LOGGER_READY_MS) <= 0)
        fail("timeout waiting for the logging binary %s", path);
    if (read(ready[0], &byte, 1) < 0) {
        /* ready all the same: it is there to read its pipes */
    }
    close(ready[0]);
    *out = o[1];
    *err = e[1];
}

/* The last "msg" of an error line in the runtime's --log (JSON lines). */
static void runtime_error(char *out, size_t size, const char *runtime, int status) {
    char path[PATH_MAX], line[8192];
    snprintf(out, size, "runtime %s exited with status %d", strrchr(runtime, '/') ? strrchr(runtime, '/') + 1 : runtime,
             status);
    snprintf(path, sizeof path, "%s/log.json", bundle);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"level\":\"error\"") && !strstr(line, "\"level\": \"error\"") &&
            !strstr(line, "\"level\":\"fatal\""))
            continue;
        char *m = strstr(line, "\"msg\":");
        if (!m)
            continue;
        m = strchr(m + 6, '"');
        if (!m)
            continue;
        size_t n = 0;
        for (m++; *m && *m != '"' && n + 1 < size; m++) {
            if (*m == '\\' && m[1])
                m++; /* \" and \\ as themselves; other escapes keep their letter */
            out[n++] = *m;
        }
        out[n] = '\0';
    }
    fclose(f);
}

/* The runtime (and so the container) starts with none of the shim's own
   signal settings: no signal ignored, none blocked. */
static void drop_signal_settings(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static pid_t spawn(char **argv, const int stdio[3]) {
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        drop_signal_settings();
        if (chdir(bundle) < 0)
            _exit(127);
        for (int i = 0; i < 3; i++)
            if (dup2(stdio[i], i) < 0)
                _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int receive_master(int server) {
    int conn = accept4(server, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        fail("console socket: %s", strerror(errno));
    char data[4096], control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) < 0)
        fail("console socket: %s", strerror(errno));
    close(conn);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        fail("the runtime sent no terminal over the console socket");
    int master;
    memcpy(&master, CMSG_DATA(c), sizeof master);
    return master;
}

static void apply_window_size(int master) {
    char path[PATH_MAX];
    path_of(path, "winsize");
    FILE *f = fopen(path, "re");
    if (!f)
        return; /* no size asked for yet */
    struct winsize ws = {0};
    unsigned width, height;
    if (fscanf(f, "%u %u", &width, &height) == 2) {
        ws.ws_col = (unsigned short)width;
        ws.ws_row = (unsigned short)height;
        ioctl(master, TIOCSWINSZ, &ws);
    }
    fclose(f);
}

/* Whole or not at all for a reader (temp, rename), not fsync'd: it has to
 * outlive the daemon, not the machine, whose end takes the process along;
 * and the daemon publishes the exit only once this is written, so an fsync
 * (~0.5-4 ms here) would delay every exit event. */
static void write_exit(pid_t pid, int status) {
    char path[PATH_MAX], tmp[PATH_MAX + 8], body[256];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    path_of(path, "exit");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n = snprintf(body, sizeof body, "{\"pid\": %d, \"status\": %d, \"exited_at\": %lld}", pid, status,
                     (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, body, (size_t)n) == n) {
        close(fd);
        rename(tmp, path);
        return;
    }
    close(fd);
}

/* Copies len bytes to fd, whole; false once fd refuses. */
static int write_all(int fd, const char *buf, ssize_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, (size_t)len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        buf += n;
        len -= n;
    }
    return 1;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* SIGTERM, as containerd's shim sends it: the logger writes what its pipes
 * hold and exits; the exit is recorded only then, so the log is complete. */
static void stop_logger(int sigfd) {
    if (logger_pid <= 0)
        return;
    kill(logger_pid, SIGTERM);
    long long deadline = now_ms() + LOGGER_STOP_MS;
    int st;
    while (waitpid(logger_pid, &st, WNOHANG) == 0) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            kill(logger_pid, SIGKILL);
            waitpid(logger_pid, &st, 0);
            break;
        }
        struct pollfd p = {sigfd, POLLIN, 0};
        struct signalfd_siginfo si;
        poll(&p, 1, (int)left);
        while (read(sigfd, &si, sizeof si) == sizeof si)
            ;
    }
}

/* Reaps children (we are their subreaper) until `pid` is gone, relaying the
 * terminal meanwhile; returns its status as a shell reports it. */
static int supervise(pid_t pid, int sigfd, int master, int term_in, int term_out) {
    int status = -1;
    long long exited_at = 0;
    char buf[32768];
    for (;;) {
        if (status >= 0 && (master < 0 || now_ms() - exited_at > RELAY_DRAIN_MS))
            return status;
        struct pollfd fds[3] = {{sigfd, POLLIN, 0}, {master, POLLIN, 0}, {term_in, POLLIN, 0}};
        int timeout = status >= 0 ? 100 : -1;
        if (poll(fds, 3, timeout) < 0 && errno != EINTR)
            return status >= 0 ? status : 255;
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGWINCH && master >= 0)
                    apply_window_size(master);
            }
            int st;
            pid_t got;
            while ((got = waitpid(-1, &st, WNOHANG)) > 0) {
                if (got == pid) {
                    status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                    exited_at = now_ms();
                }
                if (got == logger_pid)
                    logger_pid = 0;
            }
            if (got < 0 && errno == ECHILD && status < 0)
                return 255; /* it was never ours to reap */
        }
        if (master >= 0 && fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(master, buf, sizeof buf);
            if (n <= 0 || !write_all(term_out, buf, n)) { /* EIO: the pty's slave side is all closed */
                close(master);
                master = -1;
            }
        }
        if (term_in >= 0 && fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(term_in, buf, sizeof buf);
            if (n <= 0 || master < 0 || !write_all(master, buf, n)) {
                close(term_in);
                term_in = -1;
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: %s ID BUNDLE NAME RUNTIME RUNTIME_ROOT TERMINAL STDIN STDOUT STDERR NO_PIVOT\n",
                argv[0]);
        return 2;
    }
    const char *id = argv[1], *runtime = argv[4], *runtime_root = argv[5];
    int terminal = strcmp(argv[6], "1") == 0, no_pivot = strcmp(argv[10], "1") == 0;
    const char *in_path = argv[7], *out_path = argv[8], *err_path = argv[9];
    bundle = argv[2];
    name = argv[3];
    /* The daemon lets us go once it has recorded our pid: a shim of a daemon killed
     * before that (stdin at EOF) ends here, having done nothing no one knows of. */
    char go;
    if (read(0, &go, 1) != 1) {
        fprintf(stderr, "the daemon ended before it recorded this shim: nothing done\n");
        return 1;
    }

    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    report_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1); /* detach from the daemon's pipe: the daemon may go away, we stay */
    close(null);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        fail("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
    /* SIGCHLD and SIGWINCH through a signalfd, blocked before the first fork. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGWINCH);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
        fail("signalfd: %s", strerror(errno));

    char log[PATH_MAX], pid_file[PATH_MAX], process_json[PATH_MAX], console[PATH_MAX] = "";
    char console_dir[] = "/tmp/cpy-console-XXXXXX";
    snprintf(log, sizeof log, "%s/log.json", bundle);
    path_of(pid_file, "pid");
    path_of(process_json, "process.json");
    int stdio[3], server = -1, log_out = -1, log_err = -1;
    if (strncmp(out_path, "binary://", 9) == 0)
        start_logger(out_path, id, &log_out, &log_err);
    if (terminal) {
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        stdio[0] = stdio[1] = stdio[2] = null_fd;
        if (!mkdtemp(console_dir))
            fail("console socket directory: %s", strerror(errno));
        snprintf(console, sizeof console, "%s/sock", console_dir);
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        snprintf(addr.sun_path, sizeof addr.sun_path, "%s", console);
        server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(server, 1) < 0)
            fail("console socket %s: %s", console, strerror(errno));
    } else {
        stdio[0] = open_stdio(in_path, 0);
        stdio[1] = log_out >= 0 ? log_out : open_stdio(out_path, 1);
        stdio[2] = log_err >= 0 ? log_err : open_stdio(err_path, 1);
    }

    char *rargv[24];
    int n = 0;
    rargv[n++] = (char *)runtime;
    rargv[n++] = "--root";
    rargv[n++] = (char *)runtime_root;
    rargv[n++] = "--log";
    rargv[n++] = log;
    rargv[n++] = "--log-format";
    rargv[n++] = "json";
    if (strcmp(name, "init") == 0) {
        rargv[n++] = "create";
        rargv[n++] = "--bundle";
        rargv[n++] = (char *)bundle;
        if (no_pivot)
            rargv[n++] = "--no-pivot";
    } else {
        rargv[n++] = "exec";
        rargv[n++] = "--detach";
        rargv[n++] = "--process";
        rargv[n++] = process_json;
    }
    rargv[n++] = "--pid-file";
    rargv[n++] = pid_file;
    if (terminal) {
        rargv[n++] = "--console-socket";
        rargv[n++] = console;
    }
    rargv[n++] = (char *)id;
    rargv[n] = NULL;

    /* The runtime's stdio is the container's: its errors are read from its --log. */
    pid_t runtime_pid = spawn(rargv, stdio);
    int st = 0;
    while (waitpid(runtime_pid, &st, 0) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < 3; i++)
        if (i == 0 || stdio[i] != stdio[i - 1])
            close(stdio[i]);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    int master = -1, term_in = -1, term_out = -1;
    if (code == 0 && terminal) {
        master = receive_master(server);
        term_out = log_out >= 0 ? log_out : open_stdio(out_path, 1);
        term_in = *in_path ? open_stdio(in_path, 0) : -1;
        apply_window_size(master); /* a size asked for before the terminal existed */
    }
    if (server >= 0) {
        close(server);
        unlink(console);
        rmdir(console_dir);
    }
    if (code != 0) {
        char message[4096];
        runtime_error(message, sizeof message, runtime, code);
        fail("%s", message);
    }
    FILE *f = fopen(pid_file, "re");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0)
        fail("the runtime wrote no pid to %s", pid_file);
    fclose(f);
    report("{\"pid\": %d}\n", pid);

    if (terminal && log_err >= 0)
        close(log_err);
    int status = supervise(pid, sigfd, master, term_in, term_out);
    stop_logger(sigfd);
    write_exit(pid, status);
    return 0;
}
