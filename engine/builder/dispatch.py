"""A parsed Dockerfile run step by step, as dockerd 20.10's legacy builder
(builder/dockerfile/{build,dispatchers,internals}.go) runs it: the same
`Step N/M` stream, each instruction changing the stage's run config and
leaving an image, the cache probed before each step with the config the
step is known by, stages referable by name or index, ONBUILD triggers of
a base image run first, build args scoped per stage.

The work that touches containers and images is the backend's
(engine/builder/backend.py); everything here is the Dockerfile's meaning.
Deliberate difference: a metadata step (ENV, LABEL, CMD...) creates no
container; its image records a fresh container ID, and the stream prints
the `Running in`/`Removing intermediate container` lines dockerd prints
for the container it would have made, so what a user reads is the same.
"""
import copy
import os
import posixpath
import threading
from dataclasses import dataclass, field

from engine.builder import history, instructions as ins
from engine.builder.backend import BaseImage, BuildBackend, Commit, Emit, StepFailed
from engine.builder.buildargs import BuildArgs, declare_meta_args
from engine.builder.copy import CopyError, perform_copy, plan_copy, resolve_chown
from engine.builder.dockerfile import Dockerfile, parse_trigger
from engine.builder.shell_words import process_word
from engine.errors import EngineError, InvalidParameter
from engine.network.portmap import parse_port_range, split_proto_port
from engine.oci.host import scoped_path
from engine.services.containers import parse_signal
from engine.store.record import new_id

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class BuildSettings:
    """What the client's request says about how steps run (BuildOptions, as the dispatcher needs it)."""
    build_args: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    host_config: dict = field(default_factory=dict)  # RUN containers' (network, resources, extra hosts)
    cache_from: tuple[str, ...] = ()  # IDs of the images --cache-from named
    registry_config: dict = field(default_factory=dict)  # X-Registry-Config: registry -> credentials, for pulls


class Outbox:
    """A stage's messages, handed on in stage order: the first stage's as
    they come, a later one's (it may run meanwhile) once those before it are done."""

    def __init__(self):
        self._messages: list[dict] = []
        self._closed = False
        self._changed = threading.Condition()

    def put(self, message: dict) -> None:
        with self._changed:
            self._messages.append(message)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def drain(self, emit: Emit) -> None:
        """Hands on every message until the stage is over."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._messages or self._closed)
                taken, self._messages, closed = self._messages, [], self._closed
            for message in taken:
                emit(message)
            if closed and not taken:
                return


@dataclass
class Stage:
    """dockerd's dispatchState: where a stage is; each stage runs on a thread of its own."""
    name: str
    index: int
    build_args: BuildArgs
    step: int  # the number of its last printed step
    image_id: str = ""
    config: dict = field(default_factory=dict)  # the run config: what the next image's Config will be
    maintainer: str = ""
    cmd_set: bool = False
    cache_busted: bool = False
    outbox: Outbox = field(default_factory=Outbox)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def out(self, text: str) -> None:
        self.outbox.put({"stream": text})

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])


class Build:
    """One build: ``run()`` gives the final image ID or raises EngineError/StepFailed.

    Beyond dockerd: the stages run at once, each on its own thread, a stage
    waiting for the ones it names (FROM, COPY --from) to be done; their
    messages come out in the Dockerfile's order, so the stream reads as
    dockerd's sequential one. A failed stage ends the build when its turn
    comes: the stages after it are cancelled."""

    def __init__(self, dockerfile: Dockerfile, context_root: str, backend: BuildBackend, settings: BuildSettings,
                 emit: Emit, cancelled: threading.Event | None = None, context_sums: dict[str, str] | None = None):
        """``context_sums``: the context's per-file checksums as its client sent them (BuildContext.sums)."""
        self.dockerfile, self.context_root, self.backend = dockerfile, context_root, backend
        self.context_sums = context_sums
        self.settings, self.emit = settings, emit
        self.cancelled = cancelled or threading.Event()
        self.stages: list[Stage] = []
        self.build_args = BuildArgs(settings.build_args)
        self.total = dockerfile.total_steps + (len(settings.labels) if dockerfile.stages else 0)

    def run(self) -> str:
        for step, meta in enumerate(self.dockerfile.meta_args, 1):
            self.emit({"stream": f"Step {step}/{self.total} : {meta}"})
            self.emit({"stream": "\n"})
        declare_meta_args(self.dockerfile.meta_args, self.build_args, self.dockerfile.escape)
        plans, step = [], len(self.dockerfile.meta_args)
        for index, parsed in enumerate(self.dockerfile.stages):
            if parsed.name and any(s.name == parsed.name for s in self.stages):
                raise InvalidParameter(f"duplicate name {parsed.name}")
            commands = list(parsed.instructions)
            if index == len(self.dockerfile.stages) - 1:
                commands += [_label_option(key, value) for key, value in sorted(self.settings.labels.items())]
            self.stages.append(Stage(parsed.name, index, self.build_args.begin_stage(), step))
            plans.append((parsed, commands))
            step += 1 + len(commands)
        threads = [threading.Thread(target=self._run_stage, args=(stage, *plan), name=f"build-stage-{stage.index}",
                                    daemon=True) for stage, plan in zip(self.stages, plans)]
        for thread in threads:
            thread.start()
        try:
            for stage in self.stages:
                stage.outbox.drain(self.emit)
                if stage.error is not None:
                    raise stage.error
        finally:
            self.cancelled.set()  # what runs after a failed stage stops; after success nothing does
            for thread in threads:
                thread.join()
        for stage in self.stages:
            self.build_args.referenced |= stage.build_args.referenced
        unused = self.build_args.unconsumed()
        if unused:
            self.emit({"stream": f"[Warning] One or more build-args {history.plain_list(unused)} were not consumed\n"})
        last = self.stages[-1] if self.stages else None
        if last is None or not last.image_id:
            raise StepFailed("No image was generated. Is your Dockerfile empty?")
        return last.image_id

    def _run_stage(self, stage: Stage, parsed: ins.Stage, commands: list) -> None:
        try:
            self._print_step(stage, parsed)
            self._from(stage, parsed)
            self._stepped(stage)
            for command in commands:
                if self.cancelled.is_set():
                    raise StepFailed("Build cancelled")
                self._print_step(stage, command)
                self.dispatch(stage, command)
                self._stepped(stage)
            stage.outbox.put({"aux": {"ID": stage.image_id}})
        except BaseException as err:  # handed to run() in the stage's turn
            stage.error = err
        finally:
            stage.done.set()
            stage.outbox.close()

    def _print_step(self, stage: Stage, command) -> None:
        stage.step += 1
        stage.out(f"Step {stage.step}/{self.total} : {command}")
        stage.out("\n")

    @staticmethod
    def _stepped(stage: Stage) -> None:
        stage.config["Image"] = stage.image_id
        stage.out(f" ---> {_short(stage.image_id)}\n")

    # -- FROM ---------------------------------------------------------------------------------------

    def _from(self, stage: Stage, parsed: ins.Stage) -> None:
        """initializeStage: the base image (a stage, scratch or an image), its config, its triggers."""
        stage.cache_busted = False
        env = [f"{k}={v}" for k, v in self.build_args.all_meta().items()]
        name = process_word(parsed.base_name, env, self.dockerfile.escape)
        if not name:
            raise InvalidParameter(f"base name ({parsed.base_name}) should not be blank")
        base = self._image_or_stage(stage, name, by_index=False)
        stage.image_id = base.id
        stage.config = copy.deepcopy(base.config)
        if not any(e.partition("=")[0] == "PATH" for e in stage.config.get("Env") or []):
            stage.config["Env"] = [*(stage.config.get("Env") or []), DEFAULT_PATH]
        stage.config["OpenStdin"] = stage.config["StdinOnce"] = False
        triggers = stage.config.get("OnBuild") or []
        if triggers:
            stage.config["OnBuild"] = None
            stage.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for trigger in triggers:
                stage.config["Image"] = stage.image_id
                for command in parse_trigger(trigger):
                    self.dispatch(stage, command)

    def _image_or_stage(self, current: Stage, name: str, by_index: bool) -> BaseImage:
        """A former stage once it is done (by name; COPY --from also by index), scratch, or an image."""
        for stage in self.stages[:current.index]:
            if stage.name == name.lower() or (by_index and name == str(stage.index)):
                stage.done.wait()
                if stage.error is not None:
                    raise StepFailed("Build cancelled")
                return BaseImage(stage.image_id, copy.deepcopy(stage.config))
        if name == "scratch":
            return BaseImage("", {})
        return self.backend.base_image(name, self.settings.pull, current.outbox.put, self.settings.registry_config)

    # -- the instructions ---------------------------------------------------------------------------

    def dispatch(self, stage: Stage, command: ins.Instruction) -> None:
        """One instruction, its variables substituted, by the method named after its class (``_env``...)."""
        refused = command.buildkit_only()
        if refused:
            raise InvalidParameter(refused)
        env = stage.build_args.expansion_env(stage.env())
        command = command.expand(lambda word: process_word(word, env, self.dockerfile.escape))
        handler = getattr(self, "_" + type(command).__name__.lower())
        handler(stage, command)

    def _env(self, stage: Stage, command: ins.Env) -> None:
        env = stage.env()
        for key, value in command.pairs:
            entry = f"{key}={value}"
            at = next((i for i, e in enumerate(env) if e.partition("=")[0] == key), None)
            if at is None:
                env.append(entry)
            else:
                env[at] = entry
        stage.config["Env"] = env
        self._commit(stage, "ENV " + " ".join(f"{k}={v}" for k, v in command.pairs))

    def _label(self, stage: Stage, command: ins.Label) -> None:
        stage.config["Labels"] = {**(stage.config.get("Labels") or {}), **dict(command.pairs)}
        self._commit(stage, "LABEL " + " ".join(f"{k}={v}" for k, v in command.pairs))

    def _maintainer(self, stage: Stage, command: ins.Maintainer) -> None:
        stage.maintainer = command.name
        self._commit(stage, "MAINTAINER " + command.name)

    def _expose(self, stage: Stage, command: ins.Expose) -> None:
        ports = dict(stage.config.get("ExposedPorts") or {})
        for spec in command.ports:
            proto, port = split_proto_port(spec)
            first, last = parse_port_range(port)
            for number in range(first, last + 1):
                ports[f"{number}/{proto}"] = {}
        stage.config["ExposedPorts"] = ports
        self._commit(stage, "EXPOSE " + " ".join(command.ports))

    def _volume(self, stage: Stage, command: ins.Volume) -> None:
        volumes = dict(stage.config.get("Volumes") or {})
        for path in command.paths:
            if not path:
                raise InvalidParameter("VOLUME specified can not be an empty string")
            volumes[path] = {}
        stage.config["Volumes"] = volumes
        self._commit(stage, "VOLUME " + history.plain_list(command.paths))

    def _user(self, stage: Stage, command: ins.User) -> None:
        stage.config["User"] = command.value
        self._commit(stage, "USER " + command.value)

    def _stopsignal(self, stage: Stage, command: ins.StopSignal) -> None:
        parse_signal(command.value)
        stage.config["StopSignal"] = command.value
        self._commit(stage, "STOPSIGNAL " + command.value)

    def _arg(self, stage: Stage, command: ins.Arg) -> None:
        for key, value in command.args:
            stage.build_args.add_arg(key, value)
        self._commit(stage, "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in command.args))

    def _onbuild(self, stage: Stage, command: ins.Onbuild) -> None:
        stage.config["OnBuild"] = [*(stage.config.get("OnBuild") or []), command.expression]
        self._commit(stage, "ONBUILD " + command.expression)

    def _shell(self, stage: Stage, command: ins.Shell) -> None:
        stage.config["Shell"] = list(command.shell)
        self._commit(stage, "SHELL " + history.plain_list(command.shell))

    def _healthcheck(self, stage: Stage, command: ins.Healthcheck) -> None:
        old = (stage.config.get("Healthcheck") or {}).get("Test") or []
        if old and old[0] != "NONE":
            stage.out(f"Note: overriding previous HEALTHCHECK: {history.plain_list(old)}\n")
        health = {"Test": list(command.test)}
        for key, value in (("Interval", command.interval), ("Timeout", command.timeout),
                           ("StartPeriod", command.start_period), ("Retries", command.retries)):
            if value:
                health[key] = value
        stage.config["Healthcheck"] = health
        self._commit(stage, "HEALTHCHECK " + history.healthcheck(command.test, command.interval, command.timeout,
                                                                 command.start_period, command.retries))

    def _cmd(self, stage: Stage, command: ins.Cmd) -> None:
        stage.config["Cmd"] = self._command_line(stage, command)
        self._commit(stage, "CMD " + history.quoted_list(stage.config["Cmd"]))
        if command.command:
            stage.cmd_set = True

    def _entrypoint(self, stage: Stage, command: ins.Entrypoint) -> None:
        stage.config["Entrypoint"] = self._command_line(stage, command)
        if not stage.cmd_set:
            stage.config["Cmd"] = None
        self._commit(stage, "ENTRYPOINT " + history.quoted_list(stage.config["Entrypoint"]))

    @staticmethod
    def _command_line(stage: Stage, command) -> list[str]:
        """resolveCmdLine: the shell form given to the stage's shell."""
        if command.prepend_shell:
            return [*stage.shell, " ".join(command.command)]
        return list(command.command)

    def _workdir(self, stage: Stage, command: ins.Workdir) -> None:
        workdir = posixpath.normpath(posixpath.join("/", stage.config.get("WorkingDir") or "/", command.value))
        stage.config["WorkingDir"] = workdir
        probe = self._probe_config(stage, history.nop_cmd_string(stage.shell, "WORKDIR " + workdir))
        if self._cache_hit(stage, probe):
            return
        stage.image_id = self._container_lines(stage, lambda container_id: self.backend.add_layer(
            self._commit_of(stage, probe, container_id), lambda root: _make_workdir(root, workdir)))

    # -- RUN --------------------------------------------------------------------------------------

    def _run(self, stage: Stage, command: ins.Run) -> None:
        argv = self._command_line(stage, command)
        args = [f"{k}={v}" for k, v in stage.build_args.all_allowed().items()
                if k not in {e.partition("=")[0] for e in stage.env()}]
        saved = argv
        if args:
            shown = sorted(a for a in args if stage.build_args.is_referenced_or_not_builtin(a.partition("=")[0]))
            saved = [f"|{len(shown)}", *shown, *argv]
        probe = self._probe_config(stage, saved, reset_entrypoint=True)
        if self._cache_hit(stage, probe):
            return
        run_config = {**copy.deepcopy(stage.config), "Cmd": argv, "Env": stage.env() + args, "Entrypoint": [],
                      "Healthcheck": None, "AttachStdout": True, "AttachStderr": True, "Image": stage.image_id}
        container_id = self.backend.create_container(run_config, self.settings.host_config)
        stage.out(f" ---> Running in {container_id[:12]}\n")
        try:
            code = self.backend.run(container_id, lambda stream, text: _run_output(stage, stream, text),
                                    self.cancelled)
            if code != 0:
                if self.cancelled.is_set():
                    raise StepFailed("Build cancelled")
                raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code)
            stage.image_id = self.backend.commit_container(self._commit_of(stage, probe, container_id))
        except BaseException:
            if self.settings.force_remove or self.cancelled.is_set():
                self._remove(stage, container_id)
            raise
        if self.settings.remove or self.settings.force_remove:
            self._remove(stage, container_id)

    def _remove(self, stage: Stage, container_id: str) -> None:
        stage.out(f"Removing intermediate container {container_id[:12]}\n")
        self.backend.remove_container(container_id)

    # -- COPY, ADD ------------------------------------------------------------------------------------

    def _copy(self, stage: Stage, command: ins.Copy) -> None:
        source_image = None
        if command.from_:
            try:
                source_image = self._image_or_stage(stage, command.from_, by_index=True)
            except EngineError as err:
                raise InvalidParameter(f"invalid from flag value {command.from_}: {err}") from None
        self._copy_files(stage, command, source_image)

    def _add(self, stage: Stage, command: ins.Add) -> None:
        self._copy_files(stage, command, None)

    def _copy_files(self, stage: Stage, command: ins.Add, source_image: BaseImage | None) -> None:
        """performCopy: sources planned (and hashed) first, so a cache hit copies nothing."""
        workdir = stage.config.get("WorkingDir") or "/"
        if source_image is not None:
            with self.backend.mounted_image(source_image.id) as source_root:
                self._copy_step(stage, command, self._plan(source_root, command, workdir, not command.chown))
        else:
            self._copy_step(stage, command, self._plan(self.context_root, command, workdir, False,
                                                       self.context_sums))

    @staticmethod
    def _plan(source_root: str, command: ins.Add, workdir: str, preserve_ownership: bool, sums=None):
        try:
            return plan_copy(source_root, list(command.sources), command.dest, workdir, instruction=command.keyword,
                             archives=command.keyword == "ADD", preserve_ownership=preserve_ownership, sums=sums)
        except CopyError as err:
            raise StepFailed(str(err)) from None

    def _copy_step(self, stage: Stage, command: ins.Add, plan) -> None:
        probe = self._probe_config(stage, history.nop_cmd_string(stage.shell, plan.history(command.chown)))
        if self._cache_hit(stage, probe):
            return

        def fill(root: str) -> None:
            try:
                perform_copy(plan, root, resolve_chown(root, command.chown) if command.chown else None)
            except CopyError as err:
                raise StepFailed(str(err)) from None

        stage.image_id = self.backend.add_layer(self._commit_of(stage, probe), fill)

    # -- commits and the cache --------------------------------------------------------------------------

    @staticmethod
    def _probe_config(stage: Stage, cmd: list[str], reset_entrypoint: bool = False) -> dict:
        """The config a step is known by: the stage's with the step's Cmd (a RUN's without
        the entrypoint, as dockerd's withEntrypointOverride)."""
        probe = {**copy.deepcopy(stage.config), "Cmd": cmd}
        if reset_entrypoint and cmd:
            probe["Entrypoint"] = None
        return probe

    def _commit_of(self, stage: Stage, probe: dict, container_id: str = "") -> Commit:
        return Commit(stage.image_id, copy.deepcopy(stage.config), probe, stage.maintainer, container_id)

    def _cache_hit(self, stage: Stage, probe: dict) -> bool:
        """dockerd's imageProber: the first miss busts the cache for the rest of the stage."""
        if self.settings.no_cache or stage.cache_busted:
            return False
        cached = self.backend.cached(stage.image_id, probe, self.settings.cache_from)
        if not cached:
            stage.cache_busted = True
            return False
        stage.out(" ---> Using cache\n")
        stage.image_id = cached
        return True

    def _commit(self, stage: Stage, comment: str) -> None:
        """A metadata step's image: probed, else made on a container that never runs."""
        probe = self._probe_config(stage, history.nop_cmd(stage.shell, comment))
        if self._cache_hit(stage, probe):
            return
        if not stage.image_id:
            raise StepFailed("Please provide a source image with `from` prior to commit")
        stage.image_id = self._container_lines(
            stage, lambda container_id: self.backend.commit_config(
                self._commit_of(stage, {**probe, "Hostname": container_id[:12]}, container_id)))

    def _container_lines(self, stage: Stage, make) -> str:
        """The lines dockerd prints around a step's container, for one that is only an ID."""
        container_id = new_id()
        stage.out(f" ---> Running in {container_id[:12]}\n")
        image_id = make(container_id)
        if self.settings.remove or self.settings.force_remove:
            stage.out(f"Removing intermediate container {container_id[:12]}\n")
        return image_id


def _run_output(stage: Stage, stream: str, text: str) -> None:
    """A RUN's stdout as it is, its stderr in red, as dockerd streams them."""
    stage.out(f"\x1b[91m{text}\x1b[0m" if stream == "stderr" else text)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _label_option(key: str, value: str) -> ins.Label:
    """A --label of the request: a LABEL step added to the last stage (dockerd's buildLabelOptions)."""
    return ins.Label(0, 0, f"LABEL {key}={value}", pairs=[(key, value)])


def _make_workdir(root: str, workdir: str) -> None:
    """WORKDIR's directory, made inside the tree (its symlinks resolved within it), root-owned 0755."""
    path = scoped_path(root, workdir)
    os.makedirs(path, mode=0o755, exist_ok=True)
