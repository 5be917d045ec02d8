# Commands run for bench/loop-results (2 shared cores, no GPU). Wall times in RESULTS notes.
.venv/bin/loopwright bench loop --scenario scenarios/rotation-ramp.toml --seeds 5 --trigger-mode recovery --fit-samples 6000 --degraded-checks 2 --json bench/loop-results/rotation-ramp.json --plot bench/loop-results/rotation-ramp.png
.venv/bin/loopwright bench loop --scenario scenarios/gradual-thickness.toml --seeds 5 --trigger-mode recovery --fit-samples 6000 --degraded-checks 2 --json bench/loop-results/gradual-thickness.json --plot bench/loop-results/gradual-thickness.png
.venv/bin/loopwright bench loop --scenario scenarios/no-drift.toml --seeds 5 --policies static,loop-uncertainty,loop-random --multipliers 1 --trigger-mode recovery --fit-samples 6000 --degraded-checks 2 --workers 1 --json bench/loop-results/no-drift.json --plot bench/loop-results/no-drift.png

# Exploration, 1 seed (explore/), run before the final ones:
# explore/rotation-ramp-seed0-flow-cand1.json  (candidates = current batch only, flow triggers, --fit-samples 9000;
#   that JSON predates a fix: its per-seed "promotions" holds the count, not the list)
.venv/bin/loopwright bench loop --scenario scenarios/rotation-ramp.toml --seeds 1 --candidate-batches 1 --json /tmp/rr1.json --plot /tmp/rr1.png  # (candidate window was the current batch then)
# explore/rotation-ramp-seed0-recovery-cand10.json  (recovery triggers, candidates = last 10 batches)
.venv/bin/loopwright bench loop --scenario scenarios/rotation-ramp.toml --seeds 1 --policies loop-uncertainty,loop-random --multipliers 1 --trigger-mode recovery --candidate-batches 10 --json /tmp/rr_rec10.json
