"""The variable substitution of dockerd's shell lexer and the build-arg
scope (engine/builder/shell_words.py, buildargs.py), with cases from moby's
own lexer test vectors (builder/dockerfile/shell/envVarTest) and what
dockerd 20.10 answered for the same words."""
import pytest

from engine.builder.buildargs import BuildArgs, declare_meta_args
from engine.builder.dockerfile import parse
from engine.builder.shell_words import SubstitutionError, process_word

ENV = ["PWD=/home", "SHELL=bash", "KOREAN=한국어"]


@pytest.mark.parametrize("word, expected", [
    ("hello", "hello"), ("he'll'o", "hello"), ("he\\'llo", "he'llo"), ("abc\\tdef", "abctdef"),
    ('"abc\\tdef"', "abc\\tdef"), ('"abc\\\\tdef"', "abc\\tdef"), ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"), ("hello\\\\", "hello\\"), ('"hel\'lo"', "hel'lo"), ("'hello\\'", "hello\\"),
    ("'hello\\\\there'", "hello\\\\there"), ('"\'\'"', "''"), ("$.", "$."), ("$1", ""), ("he$1x", "hex"),
    ("he$.x", "he$.x"), ("he$pwd.", "he."), ("he$PWD", "he/home"), ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"), ('"he\\$PWD"', "he$PWD"), ('"he\\\\$PWD"', "he\\/home"), ("\\${}", "${}"),
    ("he\\${}xx", "he${}xx"), ("he${hi}xx", "hexx"), ("he${PWD}", "he/home"), ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"), ("he${XXX:-$PWD}xx", "he/homexx"), ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"), ("he${XXX:+${PWD}}xx", "hexx"), ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${PWD:+000}xx", "he000xx"), ("'he${XX}'", "he${XX}"), ('"he\'$PWD\'"', "he'/home'"), ("'$PWD'", "$PWD"),
    ("'\\$PWD'", "\\$PWD"), ("'\"hello\"'", '"hello"'), ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"), ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"), ("안'녕'하세요", "안녕하세요"),
    ("안녕$KOREAN", "안녕한국어"), ("${aaa}}", "}"), ("${aaa:-bbb}}", "bbb}"), ("${aaa:-bbb {foo}", "bbb {foo"),
    # dockerd 20.10 (probed): \q stays inside double quotes, $1x drops the digit, ${u:?} passes a set value
    ('"a\\qb"', "a\\qb"), ("${PWD:?}", "/home"), ('"${PWD:-a b}"', "/home"), ("a\\ b", "a b"),
])
def test_words_as_dockerd_substitutes_them(word, expected):
    assert process_word(word, ENV) == expected


@pytest.mark.parametrize("word, message", [
    ("he'llo", "unexpected end of statement while looking for matching single-quote"),
    ("he\\\\'llo", "unexpected end of statement while looking for matching single-quote"),
    ('"hello', "unexpected end of statement while looking for matching double-quote"),
    ('"hello\\"', "unexpected end of statement while looking for matching double-quote"),
    ("${}", "syntax error: bad substitution"), ("he${}xx", "syntax error: bad substitution"),
    ("he${.}", "missing ':' in substitution"), ("he${XXX:YYY}", "unsupported modifier (Y) in substitution"),
    ("he${PWD:=000}xx", "unsupported modifier (=) in substitution"), ("${{aaa}", "syntax error: bad substitution"),
    ("${aaa:-bbb", "syntax error: missing '}'"), ("${aaa:-bbb ${foo}", "syntax error: missing '}'"),
    ("${:}", "syntax error: bad substitution"), ("${:-bbb}", "syntax error: bad substitution"),
    # dockerd 20.10's words for what its CLI users see
    ("${x", "missing ':' in substitution"), ("${u-d}", "missing ':' in substitution"),
    ("${n:?}", "n: is not allowed to be unset"), ("${E:?}", "E: is not allowed to be empty"),
    ("${n:?say so}", "n: say so"),
])
def test_word_errors_name_the_word(word, message):
    with pytest.raises(SubstitutionError) as err:
        process_word(word, [*ENV, "E="])
    expected = word.replace("\\", "\\\\").replace('"', '\\"')
    assert str(err.value) == f'failed to process "{expected}": {message}'


def test_backtick_escape_token():
    assert process_word("a`$PWD b`c", ENV, escape="`") == "a$PWD bc"
    assert process_word("c:\\x", ENV, escape="`") == "c:\\x"


def test_first_entry_of_a_name_wins():
    """dockerd lists the stage's ENV before the ARGs it does not shadow."""
    assert process_word("$a", ["a=env", "a=arg"]) == "env"


def _scope(dockerfile: str, options: dict) -> tuple:
    parsed = parse(dockerfile)
    args = BuildArgs(options)
    declare_meta_args(parsed.meta_args, args, parsed.escape)
    return parsed, args


def last_step_expanded(parsed, meta: BuildArgs):
    """The first stage's last instruction as its scope substitutes it: each
    ARG declared and each ENV set on the way, as dockerd's dispatch does."""
    scope, env = meta.begin_stage(), []
    for instruction in parsed.stages[0].instructions:
        expanded = instruction.expand(lambda word: process_word(word, scope.expansion_env(env), parsed.escape))
        if instruction.keyword == "ARG":
            for key, value in expanded.args:
                scope.add_arg(key, value)
        elif instruction.keyword == "ENV":
            env += [f"{k}={v}" for k, v in expanded.pairs]
    return expanded, scope


def test_arg_scope_as_dockerd():
    """The labels dockerd 20.10 gave (probed with --build-arg HTTP_PROXY=hp --build-arg ba=fromcli)."""
    parsed, meta = _scope("ARG ma=meta\nARG ba=metadefault\nARG tag=latest\nFROM busybox:$tag\nARG ma\nARG ba\n"
                          "ARG nd\nARG x=${ma}-1\nENV x=envwins\n"
                          "LABEL l1=$ma l2=$ba l3=$x l4=${nd:-unset} l5=$HTTP_PROXY l6=${http_proxy:-none} l7=$tag\n",
                          {"HTTP_PROXY": "hp", "ba": "fromcli"})
    assert process_word(parsed.stages[0].base_name, [f"{k}={v}" for k, v in meta.all_meta().items()]) == "busybox:latest"
    label, scope = last_step_expanded(parsed, meta)
    assert dict(label.pairs) == {"l1": "meta", "l2": "fromcli", "l3": "envwins", "l4": "unset", "l5": "hp",
                                 "l6": "none", "l7": ""}
    assert scope.unconsumed() == []


def test_meta_arg_defaults_see_earlier_meta_args_and_unused_options_are_reported():
    _, meta = _scope("ARG v=1\nARG w=${v}2\nFROM busybox\n", {"zz": "1", "no_proxy": "x"})
    assert meta.all_meta() == {"v": "1", "w": "12", "no_proxy": "x"}
    assert meta.begin_stage().all_allowed() == {"no_proxy": "x"}
    assert meta.unconsumed() == ["zz"]
