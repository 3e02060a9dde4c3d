"""Host-side model construction: an `Arch` in, a torch `Network` out, user errors as InputError.

torch is imported inside the function so importing this module stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.arch import Arch
from core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from core.network import Network


def resolve_genotype(name: str):
    """The registered genotype, or an `InputError` naming the known ones (exit 2 in the CLI)."""
    from core.genotypes import get_genotype

    try:
        return get_genotype(name)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def build_network(arch: Arch, num_classes: int = 10, auxiliary: bool = True, drop_none: bool = False) -> "Network":
    """The CIFAR network for `arch` (K-L-M@C with its genotype).

    `auxiliary` adds the training-only auxiliary head; `drop_none` leaves out `none` edges for
    inference (identical outputs, same state dict keys).
    """
    genotype = resolve_genotype(arch.genotype)
    from core.network import Network

    try:
        return Network(arch.channels, num_classes, arch.K, arch.L, arch.M, genotype,
                       auxiliary=auxiliary, drop_none=drop_none)
    except ValueError as exc:
        raise InputError(f"cannot build {arch.id}: {exc}") from None
