"""Interface of a differ's Apply half: a layer blob unpacked onto mounts."""
from abc import ABC, abstractmethod

from ..types import Descriptor, Mount


class Applier(ABC):
    @abstractmethod
    def apply(self, ns: str, desc: Descriptor, mounts: list[Mount]) -> Descriptor:
        """Returns the descriptor of the uncompressed layer; its digest is the diff ID."""
