"""`[gate]`: the limits of the promotion gate (`evaluation.gate.decide` reads them).

Why its own module: the flow, the engine, the benchmark and the config hand one object to
the gate, with one set of defaults and one set of range checks, written once here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateRules:
    """The `[gate]` section: limits of the gate (see loopwright.toml for each key).

    Why the section is this dataclass: the flow, the engine and the benchmark hand the same
    object to `decide`, so the gate has one set of defaults and one set of range checks.
    """

    # significance level of every paired test: the challenger must be better on the recent
    # view with p < alpha, and is refused where it is worse (beyond a margin) with p < alpha.
    # 0.1, not 0.05: a one-sided exact test on ~200 recent rows; measured on the demo (seed 7),
    # 0.05 promoted 1 challenger (final accuracy 0.373), 0.1 promoted 3 (0.887), no harmful one
    alpha: float = 0.1
    slice_tolerance: float = 0.05  # margin: a slice may lose this much before "worse" counts
    min_slice_rows: int = 20  # slices with fewer eval rows than this are not tested
    min_eval_rows: int = 50  # below this the eval set is too small to decide anything
    require_expectations: bool = True  # every expectation test of the challenger must pass
    # the regression view (eval rows older than the recent view) may lose this much accuracy
    # before "significantly worse" refuses: the model serves today, but must not forget
    forget_tolerance: float = 0.02
    min_recent_rows: int = 20  # fewer recent rows: the whole eval set is the recent view
    recent_rows: int = 200  # newest non-seed eval rows: today's traffic (0 = all rows)
    enabled: bool = True  # False: every challenger is promoted (baselines of the benchmark)

    def __post_init__(self) -> None:
        for name in ("require_expectations", "enabled"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"[gate] {name} = {getattr(self, name)!r}: use true or false")
        for name in ("alpha", "slice_tolerance", "forget_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"[gate] {name} = {value!r}: use a number")
        if not 0 < self.alpha < 1:
            raise ValueError(f"[gate] alpha = {self.alpha!r}: use a level in (0, 1), e.g. 0.05")
        for name in ("slice_tolerance", "forget_tolerance"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"[gate] {name} = {value!r}: use a share in [0, 1), e.g. 0.02")
        for name, least in (
            ("min_slice_rows", 1),
            ("min_eval_rows", 1),
            ("min_recent_rows", 1),
            ("recent_rows", 0),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (int(value) != value or value < least)
            ):
                raise ValueError(
                    f"[gate] {name} = {value!r}: use a whole number of rows >= {least}"
                )
