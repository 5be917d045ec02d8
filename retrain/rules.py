"""`[retrain]`: which labeled rows a challenger is trained on, and how.

Why the section is this dataclass: the fit (`retrain.training`), the dataset policy and the
config read one set of fields with one set of defaults (`fit_samples` 6000, `recent_weight`
3.0: what the loop benchmark chose) and one set of range checks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

_CHOICES = {"dataset_policy": ("all", "window"), "mode": ("scratch", "finetune")}


@dataclass(frozen=True)
class RetrainRules:
    """The `[retrain]` section (see loopwright.toml for the meaning of each key)."""

    dataset_policy: str = "all"  # all | window
    window_rows: int = 2000
    mode: str = "finetune"  # scratch | finetune
    max_epochs: int = 40  # training from scratch
    finetune_epochs: int = 15  # fine-tuning from the champion's weights
    batch_size: int = 64
    learning_rate: float = 0.003
    seed: int = 0
    seed_rows: int = 600  # clean labeled rows the first champion is trained on
    # attr the train/eval split groups by: "" = the task's `group_attr` (digits: "scan", the
    # source image; a tabular task: none), "request_id" = every row on its own
    split_group: str = ""
    # audit labels (the curation queue's random share) go to the eval set, not training
    audit_to_eval: bool = True
    # fine-tune epochs = clamp(fit_samples / train rows, 1, finetune_epochs); 0 = finetune_epochs
    fit_samples: int = 6000
    recent_rows: int = 200  # the newest labeled rows, drawn recent_weight times as often
    recent_weight: float = 3.0  # 1 = every row equally
    threads: int = 1  # torch threads of fit and scoring (1: the same result on every machine)

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"[retrain] {key} = {getattr(self, key)!r} is not one of {list(allowed)}: "
                    "pick one of them"
                )
        if not isinstance(self.audit_to_eval, bool):
            raise ValueError(f"[retrain] audit_to_eval = {self.audit_to_eval!r}: use true or false")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("str", str, "bool", bool):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(
                    f"[retrain] {f.name} = {value!r} must be a number >= 0: use 0 or more"
                )
            if f.type in ("int", int) and int(value) != value:
                raise ValueError(f"[retrain] {f.name} = {value!r}: use a whole number")
        for key in ("batch_size", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"[retrain] {key} = {getattr(self, key)!r}: use 1 or more")
        if self.recent_weight < 1:
            raise ValueError(
                f"[retrain] recent_weight = {self.recent_weight!r} is below 1: use 1 (every row "
                "equally) or more (newest rows drawn that many times as often)"
            )

    def group_attr(self, task_default: str | None) -> str | None:
        """The attr the split groups by: `split_group`, else the task's (None: per row).

        >>> RetrainRules().group_attr("scan"), RetrainRules(split_group="request_id").group_attr("scan")
        ('scan', None)
        """
        if self.split_group == "request_id":
            return None
        return self.split_group or task_default
