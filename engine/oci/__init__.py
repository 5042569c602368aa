"""The OCI runtime spec that dockerd 20.10 would generate for a container.

Pure: parse the create request (``parse_config``, ``parse_host_config``:
typed objects or a 400 naming the field), merge the image's config
(``merge_image_config``), then ``generate`` config.json from them, the
container's host paths (``SpecInputs``) and a ``Host`` for what only the
machine knows (``LocalHost``, or a fake in tests).
"""
from engine.oci import init_layer
from engine.oci.host import Device, Host, LocalHost
from engine.oci.mounts import MountPaths
from engine.oci.request import (ContainerConfig, HostConfig, check_against_host, merge_image_config, parse_config,
                                parse_host_config)
from engine.oci.spec import SpecInputs, generate

__all__ = ["init_layer", "ContainerConfig", "Device", "Host", "HostConfig", "LocalHost", "MountPaths", "SpecInputs",
           "check_against_host", "generate", "merge_image_config", "parse_config", "parse_host_config"]
