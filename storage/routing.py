"""Who serves a request: champion, canary (with its traffic weight) and shadow, read together.

The serving endpoint reads a `Routing` from the registry and re-reads it when `revision`
changes (the seq of the last history event: any alias move or weight change bumps it), so a
new champion or a weight step is picked up without a restart. `in_canary` splits traffic by a
stable hash of the routing key: a user sticks to one arm, and raising the weight only adds
users to the canary (a key in at 5 % is still in at 25 %).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from storage.home import DataHome, StorageError
from storage.registry import checked_target

_SCALE = float(2**64)


@dataclass(frozen=True)
class Routing:
    """One consistent view of the serving aliases (from a single read of registry.json)."""

    champion: str | None
    canary: str | None
    canary_weight: float
    shadow: str | None
    revision: int
    #: label-shift corrections by version: the weights its posteriors are served with
    #: (`retrain.label_shift.reweight`); a version not here is served raw
    priors: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def weights_for(self, version: str | None) -> tuple[float, ...] | None:
        """The label-shift weights `version` is served with, or None (raw posteriors)."""
        return self.priors.get(version) if version is not None else None

    def role_for(self, routing_key: str) -> str:
        """ "canary" when this key goes to the canary, else "champion"."""
        if self.canary is not None and in_canary(routing_key, self.canary_weight):
            return "canary"
        return "champion"


def read_routing(home: DataHome) -> Routing:
    """The routing now. Cheap (one small JSON read, no lock: the file is replaced atomically);
    an alias pointing at no version is refused as `Registry.get` refuses it.

    >>> import tempfile
    >>> read_routing(DataHome(tempfile.mkdtemp()))
    Routing(champion=None, canary=None, canary_weight=0.0, shadow=None, revision=0, priors={})
    """
    try:
        data = json.loads(home.registry_file.read_text())
    except FileNotFoundError:
        return Routing(None, None, 0.0, None, 0)
    except json.JSONDecodeError as err:
        raise StorageError(
            f"{home.registry_file} is not valid JSON ({err}): restore it from a backup"
        ) from err
    aliases = {a: checked_target(home, a, v) for a, v in data.get("aliases", {}).items()}
    history = data.get("history", [])
    canary = aliases.get("canary")
    weight = float(data.get("weights", {}).get("canary", 0.0)) if canary else 0.0
    return Routing(
        champion=aliases.get("champion"),
        canary=canary,
        canary_weight=weight,
        shadow=aliases.get("shadow"),
        revision=int(history[-1]["seq"]) if history else 0,
        priors={
            v: tuple(float(w) for w in c["weights"])
            for v, c in data.get("priors", {}).items()
            if isinstance(c, dict) and c.get("weights")
        },
    )


def bucket(routing_key: str) -> float:
    """The key's stable position in [0, 1): blake2b-64 of the UTF-8 key / 2**64.

    >>> bucket("user-1") == bucket("user-1")
    True
    """
    if not isinstance(routing_key, str):
        raise TypeError(f"routing_key is {type(routing_key).__name__}: pass a str")
    digest = hashlib.blake2b(routing_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def in_canary(routing_key: str, weight: float) -> bool:
    """True when `routing_key` falls under `weight` (a share in [0, 1]).

    >>> in_canary("anyone", 0.0), in_canary("anyone", 1.0)
    (False, True)
    """
    if weight >= 1.0:  # (2**64 - 1) / 2**64 rounds to 1.0 in float: 100 % must mean everyone
        bucket(routing_key)  # the same type check as below
        return True
    return bucket(routing_key) < weight
