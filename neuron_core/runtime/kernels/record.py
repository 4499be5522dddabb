"""What a fast kernel gives the executor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class Kernel:
    """A fast kernel of one instruction. `run(args)` gives the instruction's fp32 result after its
    first `absorbed` epilogue ops, or None when an argument is not one it takes (the reference then
    runs the instruction and its whole epilogue). A `blocked` kernel gives its result in the
    blocked layout (blocked.py) and never returns None. `keep` holds what its session reads (the
    initializers' memory) for as long as the kernel lives."""

    run: Callable
    absorbed: int = 0
    blocked: bool = False
    keep: Any = None
