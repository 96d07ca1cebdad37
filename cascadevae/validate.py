"""The one set of argument checks every config, schedule and convention uses. Each returns the
normalised value or raises ``ValueError("<name> = <value>: expected ...")``, naming the field
and the offending value. Bools are never numbers here (``True`` is not a batch size)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple


def _fail(name: str, value: Any, want: str) -> ValueError:
    return ValueError(f"{name} = {value!r}: expected {want}")


def number(value: Any, name: str, *, positive: bool = False) -> float:
    """A finite real >= 0 (> 0 with ``positive``) as a float."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise _fail(name, value, f"a finite number {'> 0' if positive else '>= 0'}")
    return value


def count(value: Any, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    return int(value)


def optional(check, value: Any, name: str, *args, **kwargs):
    """None, or ``check(value, name, ...)``."""
    return None if value is None else check(value, name, *args, **kwargs)


def choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    if value not in tuple(choices):
        raise _fail(name, value, f"one of {list(choices)}")
    return value


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False")
    return value


def text(value: Any, name: str, *, nonempty: bool = False) -> str:
    if not isinstance(value, str) or (nonempty and not value):
        raise _fail(name, value, "a non-empty string" if nonempty else "a string")
    return value


def adam_betas(value: Any, name: str) -> Tuple[float, float]:
    """Adam's (beta1, beta2): two numbers in [0, 1)."""
    if (isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2
            or not all(isinstance(b, numbers.Real) and not isinstance(b, bool)
                       and 0.0 <= float(b) < 1.0 for b in value)):
        raise _fail(name, value, "two numbers in [0, 1)")
    return float(value[0]), float(value[1])


def capacity(value: Any, name: str) -> Tuple[float, float, int, float]:
    """JointVAE's capacity schedule [C_min, C_max, num_iters, gamma]: 0 <= C_min <= C_max
    (nats), num_iters an integer >= 1, gamma >= 0."""
    want = ("[C_min, C_max, num_iters, gamma] with 0 <= C_min <= C_max (nats), num_iters an "
            "integer >= 1 and gamma >= 0")
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 4:
        raise _fail(name, value, want)
    try:
        c_min, c_max = number(value[0], name), number(value[1], name)
        num_iters, gamma = count(value[2], name), number(value[3], name)
    except ValueError:
        raise _fail(name, value, want) from None
    if c_max < c_min:
        raise _fail(name, value, want)
    return c_min, c_max, num_iters, gamma


def dims(value: Any, name: str, latent_dim: Optional[int] = None) -> Tuple[int, ...]:
    """Distinct latent dim indices (in [0, latent_dim) when given), sorted."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise _fail(name, value, "a sequence of dim indices")
    out = tuple(count(j, name, 0) for j in value)
    if len(set(out)) != len(out) or (latent_dim is not None and any(j >= latent_dim for j in out)):
        raise _fail(name, value, f"distinct indices in [0, latent_dim = {latent_dim})")
    return tuple(sorted(out))


def iteration(t: Any) -> int:
    """An update index t >= 0 (updates are counted from 0)."""
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
        raise _fail("iteration t", t, "an integer >= 0 (updates counted from 0)")
    return int(t)
