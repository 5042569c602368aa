"""docker-compose 1.29.2 (Debian's, over its own docker-py 5) at one daemon
side of a scenario (test_build_vs_dockerd's `Side`): each command's exit code
and its lines, normalised so that engine-py's and dockerd's compare equal
when the client saw the same thing: IDs as <idN> (Side.ids), published host
ports of ephemeral bindings and timestamps as placeholders, runs of spaces
(table padding that follows the widths of what is normalised away) as one,
and the lines of stderr, where compose reports its parallel work in whatever
order it finishes, sorted."""
import os
import re
import subprocess

from test_build_vs_dockerd import Side

IPV6_TWIN = re.compile(r",:::\d+->\d+/\w+")   # dockerd's "::" binding; engine/network/DESIGN.md: not forwarded here
HOST_PORT = re.compile(r"((?:0\.0\.0\.0|\[?::\]?|127\.0\.0\.1)):\d{4,5}(?=\D|$)")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
SPACES = re.compile(r" {2,}")
PROGRESS = re.compile(r" +\.\.\. ?")       # "Creating x  ... done": padded to the longest name still in progress
RULE = re.compile(r"^-{3,}$")              # ps's rule under the header, as wide as the widest row


class Compose:
    """`docker-compose -p PROJECT` run in a project directory against the side's daemon."""

    def __init__(self, side: Side, project: str, directory):
        self.side, self.project, self.directory = side, project, directory

    def env(self) -> dict:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.side.daemon.socket}", "COMPOSE_DOCKER_CLI_BUILD": "0",
               "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": f"{self.side.daemon.workdir}/docker-config"}
        for unset in ("COMPOSE_FILE", "COMPOSE_INTERACTIVE_NO_CLI"):   # run/exec through the docker CLI, compose's default
            env.pop(unset, None)
        return env

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "--ansi", "never", "-p", self.project, *args], cwd=self.directory,
                              env=self.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def __call__(self, key: str, *args: str, stdout_sorted: bool = False) -> dict:
        """The command's exit code, stdout lines (sorted if the order is the
        client's scheduling) and sorted stderr lines as view[key]."""
        r = self.run(*args)
        out = self.lines(r.stdout)
        seen = {"exit": r.returncode, "stdout": sorted(out) if stdout_sorted else out,
                "stderr": sorted(self.lines(r.stderr))}
        self.side.view[key] = seen
        return seen

    def lines(self, text: str) -> list[str]:
        return [self.normalised(line) for line in self.side.lines(text)]

    @staticmethod
    def normalised(line: str) -> str:
        line = HOST_PORT.sub(r"\1:<port>", IPV6_TWIN.sub("", line))
        line = RULE.sub("---", PROGRESS.sub(" ... ", SPACES.sub("  ", TIMESTAMP.sub("<time>", line))))
        if line.startswith("Attaching to "):   # compose's order of the containers the daemon listed
            line = "Attaching to " + ", ".join(sorted(line[len("Attaching to "):].split(", ")))
        return line.rstrip()

    def host_port(self, service: str, port: str, index: int = 1) -> int:
        """The host port published for the service's container port (its replica `index`)."""
        r = self.run("port", f"--index={index}", service, port)
        assert r.returncode == 0, r.stderr
        return int(r.stdout.strip().rsplit(":", 1)[1])
