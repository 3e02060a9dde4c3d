"""Architectures: a K-L-M triple, an initial channel count and a genotype, written `K-L-M@C`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InputError
from core.limits import MAX_BLOCK, MAX_CHANNELS
from core.schema import DEFAULT_GENOTYPE

_ARCH_RE = re.compile(r"^\s*(\d+)-(\d+)-(\d+)(?:@(\d+))?\s*$")


class ArchError(InputError):
    """A K-L-M string that does not parse, or values out of range."""


@dataclass(frozen=True, order=True)
class Arch:
    """One point of the meta-architecture: K, L, M normal cells per block, C initial channels.

    Total cells = K + L + M + 2; the reductions sit at 0-based cell indices K and K+L+1.
    """

    K: int
    L: int
    M: int
    channels: int
    genotype: str = DEFAULT_GENOTYPE

    def __post_init__(self) -> None:
        for name in ("K", "L", "M"):
            if getattr(self, name) < 1:
                raise ArchError(f"{name} must be >= 1 in {self.triple} (got {getattr(self, name)})")
        if self.channels < 1:
            raise ArchError(f"initial channels must be >= 1 (got {self.channels})")
        for name in ("K", "L", "M"):
            if getattr(self, name) > MAX_BLOCK:
                raise ArchError(f"{name} must be <= {MAX_BLOCK} in {_short(self.triple)} (got {_short(getattr(self, name))})")
        if self.channels > MAX_CHANNELS:
            raise ArchError(f"initial channels must be <= {MAX_CHANNELS} (got {_short(self.channels)})")

    @property
    def triple(self) -> str:
        """`K-L-M`, the form the thesis writes."""
        return f"{self.K}-{self.L}-{self.M}"

    @property
    def cells(self) -> int:
        return self.K + self.L + self.M + 2

    @property
    def reduction_indices(self) -> tuple[int, int]:
        return (self.K, self.K + self.L + 1)

    @property
    def id(self) -> str:
        """The store key: `K-L-M@C`, with `/GENOTYPE` appended for anything but the default."""
        base = f"{self.triple}@{self.channels}"
        return base if self.genotype == DEFAULT_GENOTYPE else f"{base}/{self.genotype}"

    def __str__(self) -> str:
        return f"{self.triple}@{self.channels}"


def _short(value: object, limit: int = 24) -> str:
    """A value for an error message, shortened (a 5000-digit K must not flood the terminal)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_arch(text: str, *, channels: int | None = None, genotype: str | None = None) -> Arch:
    """Parse `K-L-M@C` (or `K-L-M` when `channels` is given, or `K-L-M@C/GENOTYPE`).

    Raises `ArchError` with a message naming the offending text.
    """
    raw = text
    geno = genotype or DEFAULT_GENOTYPE
    if "/" in text:
        text, _, geno_part = text.partition("/")
        if not geno_part:
            raise ArchError(f"malformed architecture {raw!r}: empty genotype after '/'")
        geno = geno_part
    m = _ARCH_RE.match(text)
    if not m:
        raise ArchError(f"malformed architecture {_short(repr(raw), 60)}: expected K-L-M@C, e.g. 6-6-6@36")
    if any(g is not None and len(g) > 6 for g in m.groups()):  # before int(): no 5000-digit parsing
        raise ArchError(f"architecture {_short(repr(raw), 60)} is out of range: K, L, M must be <= {MAX_BLOCK}, "
                        f"channels <= {MAX_CHANNELS}")
    k, l, m_, c = m.groups()
    if c is None:
        if channels is None:
            raise ArchError(f"architecture {raw!r} has no channel count: write it as {text.strip()}@C, e.g. @36")
        c = channels
    return Arch(int(k), int(l), int(m_), int(c), geno)


def triple_key(triple: str) -> tuple[int, tuple[int, ...]] | tuple[int, str]:
    """Sort key for a `K-L-M` string: numeric (4-6-8 before 4-10-4); unparsable text sorts last."""
    try:
        return (0, tuple(int(part) for part in triple.split("/")[0].split("@")[0].split("-")))
    except ValueError:
        return (1, triple)
