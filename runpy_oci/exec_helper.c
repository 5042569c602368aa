/* runpy-oci-exec: the last step into a container's program, run from a sealed
 * read-only mount of itself, or a sealed memfd copy (runpy_oci/sealed.py).
 *
 * Why: a container whose binary is "#!/proc/self/exe" makes the kernel run
 * whatever /proc/self/exe is at the final execve. For a Python runtime that
 * would be the host's interpreter, which the container could then open and,
 * once it is no longer running, overwrite (CVE-2019-5736). Through this
 * helper /proc/self/exe is a file that cannot be written.
 *
 * usage: runpy-oci-exec --runpy-oci-exec PATH ARGV0 [ARGS...]
 * Run any other way (as a script's interpreter, say) it refuses, so it cannot
 * be made to loop or to run anything else. Static: it must not load the
 * container's libraries.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "--runpy-oci-exec"

int main(int argc, char **argv, char **envp)
{
    if (argc < 4 || strcmp(argv[1], TOKEN) != 0) {
        fprintf(stderr, "runpy-oci-exec: not to be run directly\n");
        return 126;
    }
    execve(argv[2], argv + 3, envp);
    fprintf(stderr, "runpy-oci: exec %s: %s\n", argv[2], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
