"""`[curation]`: how many labels a batch may ask for, and how they are chosen.

Why the section is this dataclass: the rule (`curation.sampling.pick`) and the config read
the same fields with the same defaults and the same range checks, so a value accepted by
`loopwright.toml` is one the rule can use, and a default exists once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STRATEGIES = ("least_confidence", "margin", "entropy", "random")
DIVERSITY = ("none", "kcenter")
#: `stratify` values: "" (off), "pred" (the predicted class) or "attrs.<key>" (a logged attribute)
ATTRS_PREFIX = "attrs."
_KEY = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class CurationRules:
    """The `[curation]` section (see loopwright.toml for the meaning of each key)."""

    strategy: str = "margin"  # least_confidence | margin | entropy | random
    budget_per_batch: int = 20  # labels asked per production batch; 0 = ask for none
    audit_share: float = 0.2  # random share of the budget: unbiased accuracy estimates
    window_rows: int = 2000  # candidates are drawn from the most recent rows
    # true: a quiet batch (no drift, the estimate holds, no open episode) asks only for its
    # audit share (curation.pacing); any doubt spends the full budget
    pace: bool = True
    # how the uncertainty picks are spread (curation.diversity): "none" = top-k by score;
    # "kcenter" = k-center greedy in feature space over the pool_factor x picks most
    # uncertain candidates
    diversity: str = "none"
    pool_factor: int = 4
    # equal quotas per stratum among the uncertainty picks: "" = off, "pred" = per predicted
    # class, "attrs.<key>" = per value of a logged attribute (a slice)
    stratify: str = ""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"[curation] strategy = {self.strategy!r} is not one of {list(STRATEGIES)}: "
                "pick one of them"
            )
        if not isinstance(self.pace, bool):
            raise ValueError(f"[curation] pace = {self.pace!r}: use true or false")
        if self.diversity not in DIVERSITY:
            raise ValueError(
                f"[curation] diversity = {self.diversity!r} is not one of {list(DIVERSITY)}: "
                'use "none" (uncertainty top-k) or "kcenter" (spread in feature space)'
            )
        _whole("pool_factor", self.pool_factor, 1, "use 1 (plain top-k) or more, e.g. 4")
        if not isinstance(self.stratify, str) or not (
            self.stratify in ("", "pred")
            or (
                self.stratify.startswith(ATTRS_PREFIX)
                and _KEY.fullmatch(self.stratify[len(ATTRS_PREFIX) :])
            )
        ):
            raise ValueError(
                f'[curation] stratify = {self.stratify!r}: use "" (off), "pred" (per '
                'predicted class) or "attrs.<key>" (per value of a logged attribute, e.g. '
                '"attrs.device"; the key in letters, digits and _ . : -)'
            )
        _whole("budget_per_batch", self.budget_per_batch, 0, "use 0 (ask for no labels) or more")
        _whole("window_rows", self.window_rows, 1, "use 1 or more rows, e.g. 2000")
        share = self.audit_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(
                f"[curation] audit_share = {share!r} must lie between 0 and 1: use a share, "
                "e.g. 0.2 (a fifth of the labels drawn at random)"
            )

    @property
    def spread(self) -> bool:
        """True when the uncertainty picks are not plain top-k (diversity or quotas are on)."""
        return self.strategy != "random" and (self.diversity != "none" or bool(self.stratify))

    def pool_size(self, picks: int) -> int:
        """How many of the most uncertain candidates the spread picks are chosen among.

        >>> CurationRules(diversity="kcenter", pool_factor=4).pool_size(16)
        64
        """
        return int(picks) * self.pool_factor

    def audit_count(self, budget: int) -> int:
        """Audit picks among `budget`: round(budget * audit_share), at least 1 when the share
        is positive and budget >= 2 (an estimate needs audit labels from the start), and never
        more than the budget.

        >>> r = CurationRules(audit_share=0.2)
        >>> [r.audit_count(b) for b in (0, 1, 2, 5, 20)]
        [0, 0, 1, 1, 4]
        >>> CurationRules(audit_share=1.0).audit_count(4), CurationRules(audit_share=0.0).audit_count(4)
        (4, 0)
        """
        n_audit = round(budget * self.audit_share)
        if self.audit_share > 0 and budget >= 2:
            n_audit = max(1, n_audit)
        return min(n_audit, budget)


def _whole(key: str, value: object, minimum: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"[curation] {key} = {value!r} must be a whole number >= {minimum}: {fix}")
