/* runpy-oci-exec: the last step into a container's program, run from a sealed
 * read-only mount of itself, or a sealed memfd copy (runpy_oci/sealed.py).
 *
 * Why: a container whose binary is "#!/proc/self/exe" makes the kernel run
 * whatever /proc/self/exe is at the final execve. For a Python runtime that
 * would be the host's interpreter, which the container could then open and,
 * once it is no longer running, overwrite (CVE-2019-5736). Through this
 * helper /proc/self/exe is a file that cannot be written.
 *
 * It also makes the program start clean, as runc's do: every signal at its
 * default disposition (the interpreter ignores SIGPIPE and SIGXFSZ, and
 * whoever started the runtime may have ignored more) and none blocked. And
 * it closes REPORT_FD with this exec: whoever holds the other end (``start``,
 * or ``exec``) sees EOF once the program runs, not merely the helper.
 *
 * usage: runpy-oci-exec --runpy-oci-exec REPORT_FD PATH ARGV0 [ARGS...]
 * (REPORT_FD -1 for none). Run any other way (as a script's interpreter, say)
 * it refuses, so it cannot be made to loop or to run anything else. Static:
 * it must not load the container's libraries.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "--runpy-oci-exec"

static void start_clean(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and libc's own two refuse: always default */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int main(int argc, char **argv, char **envp)
{
    if (argc < 5 || strcmp(argv[1], TOKEN) != 0) {
        fprintf(stderr, "runpy-oci-exec: not to be run directly\n");
        return 126;
    }
    int report_fd = atoi(argv[2]);
    start_clean();
    if (report_fd >= 0)
        fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    execve(argv[3], argv + 4, envp);
    int err = errno;
    char reason[128];
    snprintf(reason, sizeof reason, "%s", strerror(err));
    reason[0] = (char)tolower((unsigned char)reason[0]); /* runc's (Go's) wording */
    fprintf(stderr, "exec %s: %s\n", argv[3], reason);
    return err == ENOENT ? 127 : 126;
}
