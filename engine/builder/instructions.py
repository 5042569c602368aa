"""The typed instructions of a Dockerfile, as buildkit's
frontend/dockerfile/instructions (vendored in dockerd 20.10) makes them
from parsed lines: argument counts, builder flags and HEALTHCHECK options
checked with dockerd's errors, and the variable substitution each one takes
(`expand`, dockerd's list: ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
VOLUME, WORKDIR, ARG; FROM's image with the meta ARGs alone, by dispatch).
"""
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from engine import timestamps
from engine.errors import InvalidParameter

Expander = Callable[[str], str]
BUILDKIT_ONLY = "the --{} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_MINIMUM_INTERVAL_NS = 1_000_000


class InstructionError(InvalidParameter):
    """An instruction dockerd refuses; `located` adds the line as dockerd prints it."""


@dataclass
class Instruction:
    """One step: its line numbers and its text as `Step N/M : ...` prints it."""
    line: int
    end_line: int
    original: str
    flags_used: list[str] = field(default_factory=list)
    keyword: ClassVar[str] = ""
    expanded: ClassVar[tuple[str, ...]] = ()  # the fields dockerd substitutes variables in

    def expand(self, expander: Expander) -> "Instruction":
        """The instruction with the variables of its scope substituted (none for most)."""
        if not self.expanded:
            return self
        return dataclasses.replace(self, **{name: _expand(getattr(self, name), expander) for name in self.expanded})

    def buildkit_only(self) -> str | None:
        """dockerd's legacy builder parses some flags only to refuse them when the step runs."""
        return None

    def __str__(self) -> str:
        return self.original


def _expand(value, expander: Expander):
    """A word, or each word of a list, of a (key, value) pair; None (an ARG without default) stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return expander(value)
    if isinstance(value, tuple):
        return tuple(_expand(part, expander) for part in value)
    return [_expand(item, expander) for item in value]


@dataclass
class _CommandLine(Instruction):
    """RUN, CMD, ENTRYPOINT: an exec-form argv, or one string run by the shell."""
    command: list[str] = field(default_factory=list)
    prepend_shell: bool = True


@dataclass
class Run(_CommandLine):
    keyword: ClassVar[str] = "RUN"
    mounts: list[str] = field(default_factory=list)

    def buildkit_only(self):
        return BUILDKIT_ONLY.format(self.flags_used[0]) if self.flags_used else None


@dataclass
class Cmd(_CommandLine):
    keyword: ClassVar[str] = "CMD"


@dataclass
class Entrypoint(_CommandLine):
    """An empty exec form (`ENTRYPOINT []`) resets the entrypoint."""
    keyword: ClassVar[str] = "ENTRYPOINT"


@dataclass
class _Pairs(Instruction):
    pairs: list[tuple[str, str]] = field(default_factory=list)
    expanded: ClassVar = ("pairs",)


@dataclass
class Env(_Pairs):
    keyword: ClassVar[str] = "ENV"


@dataclass
class Label(_Pairs):
    keyword: ClassVar[str] = "LABEL"


@dataclass
class Maintainer(Instruction):
    keyword: ClassVar[str] = "MAINTAINER"
    name: str = ""


@dataclass
class Expose(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: list[str] = field(default_factory=list)
    expanded: ClassVar = ("ports",)


@dataclass
class Add(Instruction):
    """ADD (and COPY): sources then the destination, as written."""
    keyword: ClassVar[str] = "ADD"
    sources: list[str] = field(default_factory=list)
    dest: str = ""
    chown: str = ""
    chmod: str = ""
    expanded: ClassVar = ("sources", "dest", "chown")

    def buildkit_only(self):
        return BUILDKIT_ONLY.format("chmod") if self.chmod else None


@dataclass
class Copy(Add):
    keyword: ClassVar[str] = "COPY"
    from_: str = ""


@dataclass
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    paths: list[str] = field(default_factory=list)
    expanded: ClassVar = ("paths",)


@dataclass
class _OneWord(Instruction):
    value: str = ""
    expanded: ClassVar = ("value",)


@dataclass
class User(_OneWord):
    keyword: ClassVar[str] = "USER"


@dataclass
class Workdir(_OneWord):
    keyword: ClassVar[str] = "WORKDIR"


@dataclass
class StopSignal(_OneWord):
    keyword: ClassVar[str] = "STOPSIGNAL"


@dataclass
class Arg(Instruction):
    """ARG name[=default] ...; a value of None means declared without a default."""
    keyword: ClassVar[str] = "ARG"
    args: list[tuple[str, str | None]] = field(default_factory=list)
    expanded: ClassVar = ("args",)


@dataclass
class Onbuild(Instruction):
    """The trigger as the image's config keeps it: the text after ONBUILD."""
    keyword: ClassVar[str] = "ONBUILD"
    expression: str = ""


@dataclass
class Healthcheck(Instruction):
    """The image config's Healthcheck (durations in ns, 0 when not given)."""
    keyword: ClassVar[str] = "HEALTHCHECK"
    test: list[str] = field(default_factory=list)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0


@dataclass
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: list[str] = field(default_factory=list)


@dataclass
class Stage:
    """FROM [--platform=p] image [AS name] and the instructions up to the next FROM."""
    line: int
    end_line: int
    original: str
    base_name: str
    name: str = ""
    platform: str = ""
    index: int = 0
    instructions: list[Instruction] = field(default_factory=list)

    def __str__(self) -> str:
        return self.original


def group(nodes) -> tuple[list[Arg], list[Stage]]:
    """The ARGs before the first FROM and the stages, from parsed lines."""
    meta_args, stages = [], []
    for node in nodes:
        try:
            made = _from(node) if node.keyword == "from" else _instruction(node)
        except InstructionError as err:
            raise InstructionError(f"dockerfile parse error line {node.line}: {err}") from None
        if isinstance(made, Stage):
            made.index = len(stages)
            stages.append(made)
        elif not stages and isinstance(made, Arg):
            meta_args.append(made)
        elif not stages:
            raise InstructionError("no build stage in current context")
        else:
            stages[-1].instructions.append(made)
    return meta_args, stages


def trigger(node) -> Instruction | Stage:
    """One ONBUILD trigger run by a later build; its errors come bare, as dockerd's checkDispatch gives them."""
    made = _from(node) if node.keyword == "from" else _instruction(node)
    if node.keyword in ("onbuild", "maintainer", "from"):
        raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed" if node.keyword == "onbuild"
                               else f"{node.keyword.upper()} isn't allowed as an ONBUILD trigger")
    return made


def _common(node) -> dict:
    return {"line": node.line, "end_line": node.end_line, "original": node.original.strip()}


def _flags(node, allowed: dict[str, bool]) -> dict:
    """The builder flags dockerd's BFlags accepts here (name -> takes several values)."""
    values: dict = {name: [] if several else "" for name, several in allowed.items()}
    used = []
    for word in node.flags:
        name, eq, value = word[2:].partition("=")
        if name not in allowed:
            raise InstructionError(f"Unknown flag: {name}")
        if name in used and not allowed[name]:
            raise InstructionError(f"Duplicate flag specified: {name}")
        if not eq:
            raise InstructionError(f"Missing a value on flag: {name}")
        used.append(name)
        if allowed[name]:
            values[name].append(value)
        else:
            values[name] = value
    values["_used"] = used
    return values


def _count(node, keyword: str, exactly: int | None = None, at_least: int | None = None):
    if exactly is not None and len(node.args) != exactly:
        raise InstructionError(f"{keyword} requires exactly one argument")
    if at_least is not None and len(node.args) < at_least:
        raise InstructionError(f"{keyword} requires at least one argument")


def _from(node) -> Stage:
    args, name = node.args, ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise InstructionError(f'invalid name for build stage: "{args[2]}", name can\'t start with a number or contain symbols')
    elif len(args) != 1:
        raise InstructionError("FROM requires either one or three arguments")
    flags = _flags(node, {"platform": False})
    return Stage(**_common(node), base_name=args[0], name=name, platform=flags["platform"])


def _command_line(node, flags: dict[str, bool] | None = None) -> dict:
    """The command of RUN, CMD, ENTRYPOINT, with the flags the instruction takes."""
    flags = _flags(node, flags or {})
    command = node.args if node.json else ([" ".join(node.args)] if node.args else [])
    return {"command": command, "prepend_shell": not node.json, "flags_used": flags["_used"]}


def _pairs(node, keyword: str) -> list[tuple[str, str]]:
    _flags(node, {})
    if not node.args:
        raise InstructionError(f"{keyword} requires at least one argument")
    pairs = list(zip(node.args[::2], node.args[1::2]))
    if any(not key for key, _ in pairs):
        raise InstructionError(f"{keyword} names can not be blank")
    return pairs


def _copy(node, cls):
    if len(node.args) < 2:
        raise InstructionError(f"{cls.keyword} requires at least two arguments, but only one was provided. "
                               "Destination could not be determined")
    allowed = {"chown": False, "chmod": False} | ({"from": False} if cls is Copy else {})
    flags = _flags(node, allowed)
    extra = {"from_": flags["from"]} if cls is Copy else {}
    return cls(**_common(node), sources=node.args[:-1], dest=node.args[-1], chown=flags["chown"],
               chmod=flags["chmod"], **extra)


def _arg(node) -> Arg:
    _count(node, "ARG", at_least=1)
    _flags(node, {})
    args = []
    for word in node.args:
        key, eq, value = word.partition("=")
        if eq and not key:
            raise InstructionError("ARG names can not be blank")
        args.append((key, value if eq else None))
    return Arg(**_common(node), args=args)


def _onbuild(node) -> Onbuild:
    _count(node, "ONBUILD", at_least=1)
    _flags(node, {})
    trigger = node.args[0].upper()
    if trigger == "ONBUILD":
        raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InstructionError(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original, count=1)
    return Onbuild(**_common(node), expression=expression)


def _duration(flags: dict, name: str) -> int:
    text = flags[name]
    if text == "":
        return 0
    value = timestamps.parse_duration(text)
    if value is None:
        raise InstructionError(_go_duration_error(text))
    if value < _MINIMUM_INTERVAL_NS:
        raise InstructionError(f'Interval "{name}" cannot be less than 1ms')
    return value


def _go_duration_error(text: str) -> str:
    """Go's time.ParseDuration error for TEXT."""
    unit = re.fullmatch(r"[-+]?[0-9.]+([^0-9.]*)", text)
    if unit and unit[1]:
        return f'time: unknown unit "{unit[1]}" in duration "{text}"'
    if unit and re.fullmatch(r"[-+]?[0-9.]+", text) and text.strip("+-") not in ("", "."):
        return f'time: missing unit in duration "{text}"'
    return f'time: invalid duration "{text}"'


def _healthcheck(node) -> Healthcheck:
    _count(node, "HEALTHCHECK", at_least=1)
    kind, rest = node.args[0].upper(), node.args[1:]
    if kind == "NONE":
        if rest:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(**_common(node), test=["NONE"])
    flags = _flags(node, {"interval": False, "timeout": False, "start-period": False, "retries": False})
    if kind != "CMD":
        raise InstructionError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = rest if node.json else ([" ".join(rest)] if rest else [])
    if not command:
        raise InstructionError("Missing command after HEALTHCHECK CMD")
    durations = {attr: _duration(flags, name)
                 for attr, name in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start-period"))}
    retries = 0
    if flags["retries"]:
        if not re.fullmatch(r"[-+]?[0-9]+", flags["retries"]):
            raise InstructionError(f'strconv.ParseInt: parsing "{flags["retries"]}": invalid syntax')
        retries = int(flags["retries"])
        if retries < 1:
            raise InstructionError(f"--retries must be at least 1 (not {retries})")
    return Healthcheck(**_common(node), test=["CMD" if node.json else "CMD-SHELL", *command], retries=retries,
                       **durations)


def _shell(node) -> Shell:
    _flags(node, {})
    if not node.args:
        raise InstructionError("SHELL requires at least one argument")
    if not node.json:
        raise InstructionError("SHELL requires the arguments to be in JSON form")
    return Shell(**_common(node), shell=node.args)


def _volume(node) -> Volume:
    _flags(node, {})
    _count(node, "VOLUME", at_least=1)
    paths = [path.strip() for path in node.args]
    if any(not path for path in paths):
        raise InstructionError("VOLUME specified can not be an empty string")
    return Volume(**_common(node), paths=paths)


def _one_word(cls):
    def make(node):
        _count(node, cls.keyword, exactly=1)
        _flags(node, {})
        return cls(**_common(node), value=node.args[0])
    return make


def _run(node) -> Run:
    parsed = _command_line(node, {"mount": True})
    return Run(**_common(node), **parsed, mounts=[word.partition("=")[2] for word in node.flags])


def _entrypoint(node) -> Entrypoint:
    return Entrypoint(**_common(node), **_command_line(node))


def _maintainer(node) -> Maintainer:
    _count(node, "MAINTAINER", exactly=1)
    _flags(node, {})
    return Maintainer(**_common(node), name=node.args[0])


def _expose(node) -> Expose:
    _count(node, "EXPOSE", at_least=1)
    _flags(node, {})
    return Expose(**_common(node), ports=sorted(node.args))


_MAKERS = {
    "run": _run,
    "cmd": lambda node: Cmd(**_common(node), **_command_line(node)),
    "entrypoint": _entrypoint,
    "env": lambda node: Env(**_common(node), pairs=_pairs(node, "ENV")),
    "label": lambda node: Label(**_common(node), pairs=_pairs(node, "LABEL")),
    "maintainer": _maintainer,
    "expose": _expose,
    "add": lambda node: _copy(node, Add),
    "copy": lambda node: _copy(node, Copy),
    "volume": _volume,
    "user": _one_word(User),
    "workdir": _one_word(Workdir),
    "stopsignal": _one_word(StopSignal),
    "arg": _arg,
    "onbuild": _onbuild,
    "healthcheck": _healthcheck,
    "shell": _shell,
}


def _instruction(node) -> Instruction:
    maker = _MAKERS.get(node.keyword)
    if maker is None:
        raise InstructionError(f"unknown instruction: {node.keyword.upper()}")
    return maker(node)
