"""The Dockerfile parser (engine/builder/dockerfile.py, instructions.py):
every instruction, the directives, continuations and comments, and the
errors — each case as dockerd 20.10's legacy builder answered it (probed
with `docker build` against the `dockerd` oracle)."""
import dataclasses

import pytest

from engine.builder import instructions as ins
from engine.builder.dockerfile import ParseError, parse, parse_trigger
from engine.builder.shell_words import process_word
from engine.errors import InvalidParameter


def only(text: str) -> ins.Instruction:
    """The single instruction after `FROM busybox`."""
    [stage] = parse("FROM busybox\n" + text).stages
    [instruction] = stage.instructions
    return instruction


def expanded(text: str, env=("u=x", "e=", "P=/p")):
    return only(text).expand(lambda word: process_word(word, list(env)))


def test_stages_steps_and_lines():
    parsed = parse("ARG tag=1\n# comment\nFROM busybox:$tag AS Base\nLABEL a=b\n\nfrom base\nRUN true\n")
    assert [a.args for a in parsed.meta_args] == [[("tag", "1")]]
    first, second = parsed.stages
    assert (first.base_name, first.name, first.line, first.original) == ("busybox:$tag", "base", 3,
                                                                        "FROM busybox:$tag AS Base")
    assert (second.base_name, second.index, second.instructions[0].line) == ("base", 1, 7)
    assert parsed.total_steps == 5  # ARG, FROM, LABEL, FROM, RUN


def test_target_keeps_the_stages_up_to_it():
    parsed = parse("ARG x\nFROM busybox AS Base\nLABEL a=b\nFROM base AS next\nRUN true\nFROM next\n")
    assert [s.name for s in parsed.up_to("BASE").stages] == ["base"] and parsed.up_to("BASE").total_steps == 3
    assert parsed.up_to("next").total_steps == 5
    with pytest.raises(InvalidParameter, match="^failed to reach build target nope in Dockerfile$"):
        parsed.up_to("nope")


def test_continuations_join_as_dockerd_prints_them():
    """Comments and empty lines inside a continuation are skipped; the
    empty ones earn dockerd's warning (`Step 2/2 : LABEL a=1   b=2   c=3`)."""
    parsed = parse("FROM busybox\nLABEL a=1 \\\n# a comment\n  b=2 \\   \n\n  c=3\nRUN echo \\\n")
    label, run = parsed.stages[0].instructions
    assert (str(label), label.line, label.end_line) == ("LABEL a=1   b=2   c=3", 2, 6)
    assert label.pairs == [("a", "1"), ("b", "2"), ("c", "3")]
    assert str(run) == "RUN echo"
    assert parsed.warnings == ["[WARNING]: Empty continuation line found in:\n    LABEL a=1   b=2   c=3",
                               "[WARNING]: Empty continuation lines will become errors in a future release."]


def test_continuation_ends_at_an_escaped_escape_token_and_not_at_a_comment():
    """dockerd 20.10: `a=b\\\\` at the end is no continuation; a comment line
    inside one is skipped, even one that ends with the escape token."""
    first, second = parse("FROM busybox\nLABEL a=b\\\\\nLABEL c=d \\\n  # x \\\n \\\n e=f\n").stages[0].instructions
    assert first.pairs == [("a", "b\\\\")]
    assert (str(second), second.end_line) == ("LABEL c=d   e=f", 6)


def test_moby_escape_whitespace_case():
    """moby's parser testfile escape_whitespace: a directive after leading blanks, as dockerd 20.10 runs it."""
    [env] = parse("  #escape = `\n\nFROM image\nENV foo `\nENV bar baz").stages[0].instructions
    assert env.pairs == [("foo", "ENV bar baz")]


@pytest.mark.parametrize("head, label", [
    ("# escape=`\n", "LABEL a=b c=d"),
    ("#   ESCAPE =  `  \n", "LABEL a=b c=d"),
    ("# syntax=docker/dockerfile:1\n# escape=`\n", "LABEL a=b c=d"),
])
def test_escape_directive(head, label):
    parsed = parse(head + "FROM busybox\nLABEL a=b`\n c=d\n")
    assert parsed.escape == "`" and str(parsed.stages[0].instructions[0]) == label


@pytest.mark.parametrize("head", ["# comment\n# escape=`\n", "\n# escape=`\n", "# foo=bar\n# escape=`\n"])
def test_directives_only_at_the_top(head):
    """After a comment, an empty line or an unknown directive `# escape` is a comment."""
    parsed = parse(head + "FROM busybox\nLABEL a=b`\n")
    assert parsed.escape == "\\" and parsed.stages[0].instructions[0].pairs == [("a", "b`")]


def test_syntax_directive_and_bom_and_crlf():
    parsed = parse("\ufeff# syntax=docker/dockerfile:1\r\nFROM busybox\r\nLABEL a=b\r\n")
    assert parsed.syntax == "docker/dockerfile:1"
    assert only("LABEL a=b\r\n").pairs == [("a", "b")]


def test_lower_case_instructions():
    assert str(parse("from busybox\nlabel A=B\n").stages[0].instructions[0]) == "label A=B"


@pytest.mark.parametrize("text, command, shell", [
    ('CMD ["a", "$u"] trailing', ["a", "$u"], False),
    ("CMD [\"a\", 'b']", ["[\"a\", 'b']"], True),
    ('ENTRYPOINT echo $u "q"', ['echo $u "q"'], True),
    ("CMD", [], True),
    ("CMD [NaN]", ["[NaN]"], True),  # no JSON to Go
    ("ENTRYPOINT []", [], False),
    ('RUN ["sh", "-c", "x"]', ["sh", "-c", "x"], False),
])
def test_exec_and_shell_forms(text, command, shell):
    instruction = only(text)
    assert (instruction.command, instruction.prepend_shell) == (command, shell)


def test_env_and_label_forms():
    assert expanded('ENV x a  b "c"').pairs == [("x", "a  b c")]
    assert expanded('ENV y="1 2" z=3').pairs == [("y", "1 2"), ("z", "3")]
    assert expanded("LABEL old  value with  spaces").pairs == [("old", "value with  spaces")]
    assert expanded('LABEL "k 1"=v "k2"="v 2" k3="" k4= ').pairs == [("k 1", "v"), ("k2", "v 2"), ("k3", ""),
                                                                    ("k4", "")]


def test_substitution_only_where_dockerd_applies_it():
    assert expanded("WORKDIR $P/w").value == "/p/w"
    assert expanded("USER ${P}:1").value == "/p:1"
    assert expanded("STOPSIGNAL SIG$u").value == "SIGx"
    assert expanded('EXPOSE 80 $u "82"').ports == ["82", "x", "80"]  # sorted as written, as dockerd sorts
    assert expanded('VOLUME ["/a\\\\b", "$P"]').paths == ["/ab", "/p"]
    copy = "COPY --chown=${n:-3} --from=$u $P/a /b/"
    assert expanded(copy) == dataclasses.replace(only(copy), sources=["/p/a"], chown="3")  # --from as written
    for text in ("RUN echo $u", "CMD echo $u", "ENTRYPOINT echo $u", "MAINTAINER $u", "ONBUILD LABEL a=$u",
                 'SHELL ["$u"]', "HEALTHCHECK CMD $u"):
        assert expanded(text) == only(text)


def test_copy_and_add():
    copy = only("COPY --chown=1:1 --from=base a b /c/")
    assert (copy.sources, copy.dest, copy.chown, copy.from_, copy.buildkit_only()) == (["a", "b"], "/c/", "1:1",
                                                                                     "base", None)
    assert only('ADD ["a b", "/c"]').sources == ["a b"]
    assert only('COPY "c d" /x/').sources == ['"c', 'd"']  # shell form splits at blanks, quotes or not
    assert only("COPY --chown=\"1:1\" a /b").chown == "1:1"


def test_buildkit_only_flags_are_refused_when_the_step_runs():
    message = ("the --{} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to "
               "build images with BuildKit enabled")
    run = only("RUN --mount=type=cache,target=/x true")
    assert (run.command, run.mounts, run.buildkit_only()) == (["true"], ["type=cache,target=/x"],
                                                              message.format("mount"))
    assert only("COPY --chmod=755 a /b").buildkit_only() == message.format("chmod")
    assert only("ADD --chmod=755 a /b").buildkit_only() == message.format("chmod")
    assert only("RUN true").buildkit_only() is None


def test_other_instructions():
    assert only("MAINTAINER  me <me@x>").name == "me <me@x>"
    assert only("EXPOSE 80/tcp 53/udp 8000-8002 443").ports == ["443", "53/udp", "80/tcp", "8000-8002"]
    assert only("VOLUME /v3 /v4").paths == ["/v3", "/v4"]
    assert only('SHELL ["/bin/ash", "-c"]').shell == ["/bin/ash", "-c"]
    assert only("ARG a=\"x y\" b").args == [("a", '"x y"'), ("b", None)]
    assert only("ONBUILD   LABEL  x=$y").expression == "LABEL  x=$y"
    assert only("ONBUILD RUNN x").expression == "RUNN x"  # refused only when a later build runs it
    assert str(only("WORKDIR c:\\x")) == "WORKDIR c:\\x"


@pytest.mark.parametrize("text, fields", [
    ("HEALTHCHECK --interval=1m30s --timeout=5s --start-period=2s --retries=3 CMD curl $u",
     {"test": ["CMD-SHELL", "curl $u"], "interval": 90 * 10**9, "timeout": 5 * 10**9, "start_period": 2 * 10**9,
      "retries": 3}),
    ('HEALTHCHECK CMD ["a", "b"]', {"test": ["CMD", "a", "b"], "interval": 0, "retries": 0}),
    ("HEALTHCHECK NONE", {"test": ["NONE"]}),
    ("HEALTHCHECK --foo NONE", {"test": ["NONE"]}),
])
def test_healthcheck(text, fields):
    health = only(text)
    assert {name: getattr(health, name) for name in fields} == fields


@pytest.mark.parametrize("text, message", [
    ("FROM busybox\nLABEL a=b\nRUNN x\n", "dockerfile parse error line 3: unknown instruction: RUNN"),
    ("FROM busybox\nENV =x\n", "dockerfile parse error line 2: ENV names can not be blank"),
    ("FROM busybox\nCOPY --foo=1 a /b\n", "dockerfile parse error line 2: Unknown flag: foo"),
    ("FROM busybox\nCOPY a\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one "
                               "was provided. Destination could not be determined"),
    ("FROM busybox\nADD\n", "dockerfile parse error line 2: ADD requires at least two arguments, but only one was "
                            "provided. Destination could not be determined"),
    ("\n# only a comment\n", "failed to parse Dockerfile: file with no instructions"),
    ("# escape=x\nFROM busybox\n", "failed to parse Dockerfile: invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n# escape=\\\nFROM busybox\n",
     "failed to parse Dockerfile: only one escape parser directive can be used"),
    ("LABEL a=b\nFROM busybox\n", "no build stage in current context"),
    ("FROM busybox\nONBUILD ONBUILD LABEL a=b\n",
     "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM busybox\nONBUILD from busybox\n", "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM busybox\nONBUILD MAINTAINER x\n",
     "dockerfile parse error line 2: MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM busybox\nONBUILD\n", "dockerfile parse error line 2: ONBUILD requires at least one argument"),
    ("FROM busybox\nONBUILD --foo=1 LABEL a=b\n", "dockerfile parse error line 2: Unknown flag: foo"),
    ("FROM busybox\nSHELL /bin/bash -c\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM busybox\nSHELL []\n", "dockerfile parse error line 2: SHELL requires at least one argument"),
    ("FROM busybox\nHEALTHCHECK --interval=1x CMD true\n",
     'dockerfile parse error line 2: time: unknown unit "x" in duration "1x"'),
    ("FROM busybox\nHEALTHCHECK --interval=500us CMD true\n",
     'dockerfile parse error line 2: Interval "interval" cannot be less than 1ms'),
    ("FROM busybox\nHEALTHCHECK --interval=0s CMD true\n",
     'dockerfile parse error line 2: Interval "interval" cannot be less than 1ms'),
    ("FROM busybox\nHEALTHCHECK --timeout=-1s CMD true\n",
     'dockerfile parse error line 2: Interval "timeout" cannot be less than 1ms'),
    ("FROM busybox\nHEALTHCHECK FOO true\n", 'dockerfile parse error line 2: Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM busybox\nHEALTHCHECK NONE x\n", "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments"),
    ("FROM busybox\nHEALTHCHECK --retries=0 CMD true\n",
     "dockerfile parse error line 2: --retries must be at least 1 (not 0)"),
    ("FROM busybox\nHEALTHCHECK --retries=x CMD true\n",
     'dockerfile parse error line 2: strconv.ParseInt: parsing "x": invalid syntax'),
    ("FROM busybox\nHEALTHCHECK CMD\n", "dockerfile parse error line 2: Missing command after HEALTHCHECK CMD"),
    ("FROM busybox\nHEALTHCHECK\n", "dockerfile parse error line 2: HEALTHCHECK requires at least one argument"),
    ("FROM busybox\nHEALTHCHECK --foo=1 CMD true\n", "dockerfile parse error line 2: Unknown flag: foo"),
    ("FROM busybox\nRUN --network=host true\n", "dockerfile parse error line 2: Unknown flag: network"),
    ("FROM busybox\nRUN --security=insecure true\n", "dockerfile parse error line 2: Unknown flag: security"),
    ("FROM busybox\nADD --from=x a /b\n", "dockerfile parse error line 2: Unknown flag: from"),
    ("FROM busybox AS\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM busybox AS x y\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM busybox AS 1x\n", 'dockerfile parse error line 1: invalid name for build stage: "1x", name can\'t start '
                             "with a number or contain symbols"),
    ("FROM --foo=1 busybox\n", "dockerfile parse error line 1: Unknown flag: foo"),
    ("FROM busybox\nEXPOSE\n", "dockerfile parse error line 2: EXPOSE requires at least one argument"),
    ("FROM busybox\nENV x\n", "failed to parse Dockerfile: ENV must have two arguments"),
    ("FROM busybox\nLABEL x\n", "failed to parse Dockerfile: LABEL must have two arguments"),
    ("FROM busybox\nLABEL a=b c\n",
     'failed to parse Dockerfile: Syntax error - can\'t find = in "c". Must be of the form: name=value'),
    ("FROM busybox\nARG\n", "dockerfile parse error line 2: ARG requires at least one argument"),
    ("FROM busybox\nARG =1\n", "dockerfile parse error line 2: ARG names can not be blank"),
    ("FROM busybox\nSTOPSIGNAL\n", "dockerfile parse error line 2: STOPSIGNAL requires exactly one argument"),
    ("FROM busybox\nMAINTAINER\n", "dockerfile parse error line 2: MAINTAINER requires exactly one argument"),
    ("FROM busybox\nWORKDIR\n", "dockerfile parse error line 2: WORKDIR requires exactly one argument"),
    ("FROM busybox\nUSER\n", "dockerfile parse error line 2: USER requires exactly one argument"),
    ('FROM busybox\nVOLUME [""]\n', "dockerfile parse error line 2: VOLUME specified can not be an empty string"),
    ("FROM busybox\nVOLUME\n", "dockerfile parse error line 2: VOLUME requires at least one argument"),
    ('FROM busybox\nCMD ["a", 1]\n',
     "failed to parse Dockerfile: when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM busybox\nCOPY --chown=1 --chown=2 a /b\n", "dockerfile parse error line 2: Duplicate flag specified: chown"),
    ("FROM busybox\nCOPY --chown a /b\n", "dockerfile parse error line 2: Missing a value on flag: chown"),
    ("FROM busybox\nENV --foo=1 a=b\n", "dockerfile parse error line 2: Unknown flag: foo"),
    ("FROM busybox\nCMD --foo=1 a=b\n", "dockerfile parse error line 2: Unknown flag: foo"),
])
def test_errors_in_dockerds_words(text, message):
    with pytest.raises(ParseError if message.startswith("failed") else InvalidParameter) as err:
        parse(text)
    assert str(err.value) == message


def test_onbuild_triggers_as_a_later_build_runs_them():
    """dockerd checks a trigger only when a build uses the image, and prints its error bare."""
    [label] = parse_trigger(only("ONBUILD LABEL t=$x \\\n   u=2").expression)
    assert label.expand(lambda word: process_word(word, ["x=1"])).pairs == [("t", "1"), ("u", "2")]
    for trigger, message in [("RUNN x", "unknown instruction: RUNN"), ("ENV =x", "ENV names can not be blank"),
                             ("COPY a", "COPY requires at least two arguments, but only one was provided. "
                                        "Destination could not be determined"),
                             ("FROM busybox", "FROM isn't allowed as an ONBUILD trigger"),
                             ("ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]:
        with pytest.raises(InvalidParameter) as err:
            parse_trigger(trigger)
        assert str(err.value) == message
