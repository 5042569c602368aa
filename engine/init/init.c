/*
 * engine-py-init: the init `docker run --init` puts in front of a
 * container's command (bind-mounted read-only at /sbin/docker-init), in the
 * role of docker-init (tini): `engine-py-init -- CMD ARGS...`.
 *
 * Why: a program run as pid 1 gets no default signal actions (SIGTERM does
 * nothing unless it installs a handler) and inherits every orphan, which
 * most programs never reap. This init runs CMD as its only child, forwards
 * every signal it gets to that child, reaps all children, and exits as the
 * child did (its code, or 128 + the signal that killed it).
 *
 * Static, so it runs in any image (no libc of the image needed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals that are the process's own business (faults), never forwarded. */
static int synchronous(int sig)
{
    return sig == SIGFPE || sig == SIGILL || sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT ||
           sig == SIGTRAP || sig == SIGSYS;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: engine-py-init -- COMMAND [ARGS...]\n");
        return 2;
    }

    sigset_t all, previous;
    sigfillset(&all);
    for (int sig = 1; sig < NSIG; sig++)
        if (synchronous(sig))
            sigdelset(&all, sig);
    sigprocmask(SIG_SETMASK, &all, &previous);

    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "engine-py-init: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &previous, NULL);
        execvp(argv[first], argv + first);
        fprintf(stderr, "engine-py-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == child)
                return exit_code(status); /* the kernel kills the rest with pid 1 */
    }
}
