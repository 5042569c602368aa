"""The runtime-spec "features" document, built from the very tables the
config validation and the executor use, so it cannot promise more than
``create`` accepts."""


def features():
    from runpy_oci import capabilities, mounts, state
    from runpy_oci.spec import model

    options = set(mounts.FLAG_OPTIONS) | set(mounts.PROPAGATION_OPTIONS) | set(mounts.IGNORED_OPTIONS) | {mounts.COPY_UP}
    linux = {
        "namespaces": sorted(model.NAMESPACE_TYPES),
        "capabilities": list(capabilities.NAMES),
        "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
        "seccomp": _seccomp(),
        "apparmor": {"enabled": False},
        "selinux": {"enabled": False},
    }
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": state.OCI_VERSION,
        "hooks": list(model.HOOK_KINDS),
        "mountOptions": sorted(options),
        "linux": linux,
        "annotations": {"org.opencontainers.runtime-spec.features.implementation": "runpy-oci"},
    }


def _seccomp():
    from runpy_oci.spec import seccomp

    return {
        "enabled": True,
        "actions": list(seccomp.ACTIONS),
        "operators": list(seccomp.OPERATORS),
        "archs": list(seccomp.ARCHES),
        "knownFlags": list(seccomp.FLAGS),
        "supportedFlags": list(seccomp.FLAGS),
    }
