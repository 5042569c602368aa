"""`.dockerignore` with Docker's pattern rules (engine/builder/dockerignore.py),
with the cases of moby's own pattern-matcher tests and the CLI's and
daemon's handling of the Dockerfile and .dockerignore themselves."""
import pytest

from engine.builder.dockerignore import (PatternMatcher, build_files_to_remove, go_clean, keep_build_files,
                                         read_patterns)
from engine.errors import InvalidParameter


@pytest.mark.parametrize("pattern, path, excluded", [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True), ("**", "/", True),
    ("**", "dir/file", True), ("**/", "dir/file", True), ("**/**", "dir/file", True), ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True), ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False), ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True), ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True), ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True), (".*", ".foo", True),
    (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True), ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False), ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False), ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False), ("*", "fileutils.go", True),
    ("*.go", "fileutils.go", True), ("a$b", "a$b", True),
    # a path is excluded with its parent directory; `*` stays within one element
    ("docs", "docs/a/b", True), ("*.md", "sub/x.md", False), ("*/x.md", "sub/x.md", True), ("sub", "subway", False),
])
def test_patterns_as_docker_matches_them(pattern, path, excluded):
    assert PatternMatcher([pattern]).matches(path) is excluded


def test_last_matching_pattern_decides():
    matcher = PatternMatcher(read_patterns("*.go\n!keep*.go\nkeep_not.go\n"))
    assert [matcher.matches(p) for p in ("a.go", "keep.go", "keep_not.go", "a.txt")] == [True, False, True, False]


def test_the_context_itself_is_never_excluded():
    assert PatternMatcher(["*", "."]).matches(".") is False


def test_reading_cleans_patterns():
    """Comments only at the start of a line; `/` and `./` leading, `!` with blanks, paths cleaned."""
    text = "\ufeff# comment\n /node_modules \n!  /keep\n./a/../b\n\n  # not a comment\n/\nsub//dir/\n"
    assert read_patterns(text) == ["node_modules", "!keep", "b", "# not a comment", "/", "sub/dir"]


@pytest.mark.parametrize("patterns, message", [(["!"], 'illegal exclusion pattern: "!"'),
                                               (["a[b"], "syntax error in pattern")])
def test_bad_patterns(patterns, message):
    with pytest.raises(InvalidParameter, match=message.replace("[", r"\[")):
        PatternMatcher(patterns)


def test_go_clean():
    assert [go_clean(p) for p in ("", "//a//b/", "a/./b/..", "../x", "/..")] == [".", "/a/b", "a", "../x", "/"]


def test_cli_keeps_the_dockerfile_and_dockerignore_in_the_context():
    assert keep_build_files(["*"], "Dockerfile") == ["*", "!.dockerignore", "!Dockerfile"]
    assert keep_build_files(["*"], "Dockerfile", dockerfile_from_stdin=True) == ["*", "!.dockerignore"]
    assert keep_build_files(["*.go"], "sub/Dockerfile") == ["*.go"]


def test_daemon_removes_the_excluded_build_files_after_reading_the_dockerfile():
    assert build_files_to_remove(read_patterns(".dockerignore\nDockerfile\n"), "Dockerfile") == [".dockerignore",
                                                                                                  "Dockerfile"]
    assert build_files_to_remove(["*", "!.dockerignore"], "dev/Dockerfile") == ["dev/Dockerfile"]
    assert build_files_to_remove(["*.txt"], "Dockerfile") == []
