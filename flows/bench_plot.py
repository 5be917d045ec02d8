"""The benchmark's picture: accuracy per batch per policy (drift phases shaded), labels beneath."""

from __future__ import annotations

from pathlib import Path


def plot(doc: dict, path: str | Path) -> None:
    """Median curves over seeds: accuracy on each batch's never-labeled rows (top) and
    cumulative labels spent (bottom, log scale: the oracle labels everything)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = doc["scenario"]
    fig, (top, low) = plt.subplots(
        2, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    base = sc["phases"][0]["first_batch"]
    onset = sc["onset_batch"]
    for ax in (top, low):
        for ph in sc["phases"][1:]:
            ax.axvspan(
                ph["first_batch"] - 0.5,
                ph["last_batch"] + 0.5,
                color="tab:orange" if ph["index"] % 2 else "tab:red",
                alpha=0.08,
                lw=0,
            )
        if onset is not None:
            ax.axvline(onset - 0.5, color="k", ls=":", lw=1)
    styles = {
        "static": ("grey", "--"),
        "oracle": ("black", "-"),
        "periodic-random": ("tab:purple", "-."),
        "loop-random": ("tab:blue", "-"),
        "loop-uncertainty": ("tab:green", "-"),
        "configured": ("tab:olive", ":"),
    }
    shown = [
        k
        for k, v in doc["policies"].items()
        if v["kind"] != "loop-random"
        or v["budget"]
        in {p["budget"] for p in doc["policies"].values() if p["kind"] == "loop-uncertainty"}
    ]
    for name in shown:
        v = doc["policies"][name]
        color, ls = styles[v["kind"]]
        lw = 2.2 if v["kind"] in ("loop-uncertainty", "oracle", "configured") else 1.3
        fixed = v["kind"] in ("static", "oracle", "configured")
        alpha = 1.0 if v["budget_share"] >= 0.1 or fixed else 0.55
        x = range(base, base + len(v["median"]["accuracy"]))
        top.plot(
            x,
            v["median"]["accuracy"],
            color=color,
            ls=ls,
            lw=lw,
            alpha=alpha,
            label=f"{name} (AUC {v['median']['auc']:.3f})",
        )
        low.plot(
            x,
            [max(c, 1) for c in v["median"]["labels_cumulative"]],
            color=color,
            ls=ls,
            lw=lw,
            alpha=alpha,
        )
    top.set_ylabel("accuracy on the batch's unlabeled rows\n(before its labels are used)")
    top.set_title(
        f"{sc['name']}: median of {len(doc['seeds'])} seeds (shaded: drift phases, dotted: onset)"
    )
    top.legend(fontsize=8, loc="lower left", ncol=2)
    top.grid(alpha=0.3)
    low.set_yscale("log")
    low.set_ylabel("labels spent\n(cumulative)")
    low.set_xlabel("production batch")
    low.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
