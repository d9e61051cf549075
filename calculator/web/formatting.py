"""Numbers to short strings, once, in Python: templates print strings and never format numbers
(Django's per-number localisation was a fifth of a request's time)."""

from __future__ import annotations

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4


def size(n: int) -> str:
    """Binary units, three significant digits: ``14.2 GiB``, ``160 MiB``."""
    a = abs(n)
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if a >= scale:
            v = n / scale
            return f"{v:.2f} {unit}" if abs(v) < 10 else f"{v:.1f} {unit}" if abs(v) < 100 else f"{v:.0f} {unit}"
    return f"{n} B"


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def count(n: int) -> str:
    return f"{n:,}"


def short_count(n: int) -> str:
    """``8.03 B``, ``41.9 M``, ``12.3 K``."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.2f} {unit}" if v < 10 else f"{v:.1f} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return str(n)


def percent(x: float) -> str:
    if x == 0:
        return "0%"
    if x < 1:
        text = f"{x:.3g}"
        return "<0.001%" if "e" in text else f"{text}%"
    return f"{x:.2f}%" if x < 10 else f"{x:.1f}%"


def number(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:.4g}"


def factor(x: float) -> str:
    """How many times: ``2,356\u00d7``, ``12.5\u00d7``."""
    return f"{x:,.0f}\u00d7" if x >= 100 else f"{x:.3g}\u00d7"


def duration(seconds: float | None) -> str:
    """``3 h 12 min``, ``45 min``, ``2.4 d``; "—" when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} h {int(minutes % 60):02d} min"
    return f"{hours / 24:.1f} d"


def money(usd: float | None) -> str:
    """``$12.40``, ``$1,204``; "—" when unknown."""
    if usd is None:
        return "—"
    return f"${usd:,.2f}" if usd < 100 else f"${usd:,.0f}"


def rate(per_second: float | None) -> str:
    """Tokens per second: ``6,770``; "—" when unknown."""
    return "—" if per_second is None else f"{per_second:,.0f}"


def share(fraction: float) -> str:
    """A fraction as a percentage: 0.15 -> ``15%``."""
    return f"{fraction:.0%}" if (fraction * 100).is_integer() else f"{fraction:.1%}"


def hours(value: float | None) -> str:
    """A time in hours, as `duration` writes it."""
    return duration(None if value is None else value * 3600)


def tflops(flops_per_second: float | None) -> str:
    """Peak throughput: ``989 TFLOPS``."""
    return "" if flops_per_second is None else f"{flops_per_second / 1e12:,.0f} TFLOPS"
