"""The build-arg scope of dockerd's legacy builder (builder/dockerfile/
buildargs.go): which ARG values a step sees, from the ARGs declared so far,
the ARGs before the first FROM and the client's `buildargs`.

A stage sees an ARG only once it declares it (`ARG name`, which takes the
meta ARG's value or the client's), except the proxy variables, which are
always there when the client sends them. ENV wins over an ARG of the same name.
"""
from engine.builder.shell_words import process_word

BUILTIN_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                "NO_PROXY", "no_proxy")


class BuildArgs:
    def __init__(self, from_options: dict[str, str | None]):
        self.from_options = dict(from_options)
        self.allowed: dict[str, str | None] = {}
        self.meta: dict[str, str | None] = {}
        self.referenced: set[str] = set()

    def clone(self) -> "BuildArgs":
        copy = BuildArgs(self.from_options)
        copy.allowed, copy.meta, copy.referenced = dict(self.allowed), dict(self.meta), set(self.referenced)
        return copy

    def begin_stage(self) -> "BuildArgs":
        """The scope a new stage starts with: the meta ARGs, nothing declared."""
        stage = self.clone()
        stage.allowed = {}
        return stage

    def add_arg(self, key: str, value: str | None):
        self.allowed[key] = value
        self.referenced.add(key)

    def add_meta_arg(self, key: str, value: str | None):
        self.meta[key] = value

    def _value(self, key: str, mapping: dict) -> tuple[str, bool]:
        if self.from_options.get(key) is not None:
            return self.from_options[key], True
        default = mapping.get(key)
        if default is None:
            meta = self.meta.get(key)
            return (meta, True) if meta is not None else ("", False)
        return default, True

    def _all(self, mapping: dict) -> dict[str, str]:
        values = {}
        for key in [*mapping, *(k for k in BUILTIN_ARGS if k not in mapping)]:
            if key not in mapping and key not in self.from_options:
                continue
            value, found = self._value(key, mapping)
            if found:
                values[key] = value
        return values

    def all_allowed(self) -> dict[str, str]:
        """The declared ARGs (and the proxy variables the client sent) with their values."""
        return self._all(self.allowed)

    def all_meta(self) -> dict[str, str]:
        """What FROM's image name is expanded with: the ARGs before the first FROM."""
        return self._all(self.meta)

    def expansion_env(self, env: list[str]) -> list[str]:
        """A step's substitution scope: the stage's ENV, then the ARGs ENV does not shadow."""
        names = {entry.partition("=")[0] for entry in env}
        return [*env, *(f"{k}={v}" for k, v in self.all_allowed().items() if k not in names)]

    def is_referenced_or_not_builtin(self, key: str) -> bool:
        """Whether a RUN's cache key names the arg: proxy args only once declared (they are no secret then)."""
        return key in self.referenced or key not in BUILTIN_ARGS

    def unconsumed(self) -> list[str]:
        """The client's build args no ARG declared: dockerd warns about them
        (`[Warning] One or more build-args [x] were not consumed`)."""
        return sorted(k for k in self.from_options if k not in self.referenced and k not in BUILTIN_ARGS)


def declare_meta_args(meta_args, build_args: BuildArgs, escape: str) -> None:
    """The ARGs before the first FROM, each default expanded with those before it."""
    for instruction in meta_args:
        env = [f"{k}={v}" for k, v in build_args.all_allowed().items()]
        expanded = instruction.expand(lambda word: process_word(word, env, escape))
        for key, value in expanded.args:
            build_args.add_arg(key, value)
            build_args.add_meta_arg(key, value)
