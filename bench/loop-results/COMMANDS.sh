# Session 10 (commit 6a15340, loopwright.toml as shipped, 2 shared cores, one worker), re-run
# on the one-loop engine: rotation-ramp, gradual-thickness, sudden-inversion, label-shift
# (files replaced):
#   for sc in rotation-ramp gradual-thickness sudden-inversion label-shift; do
#     loopwright bench loop --scenario scenarios/$sc.toml --seeds 5 \
#       --policies static,oracle,loop-uncertainty,loop-random --multipliers 1 \
#       --degraded-checks 2 --workers 1 --json bench/loop-results/$sc.json --plot bench/loop-results/$sc.png
#   done
# The other files (noise-burst, no-drift) are still the session-2 replica's, below.
# Commands run for bench/loop-results (2 shared cores, no GPU), commit a5b3005, loopwright.toml
# as shipped (loop policies read [trigger] [drift] [curation] [retrain] [gate] from it).
# Wall times are in bench/RESULTS.md ("Loop benchmark").
.venv/bin/loopwright bench loop --scenario scenarios/rotation-ramp.toml --seeds 5 --degraded-checks 2 --json bench/loop-results/rotation-ramp.json --plot bench/loop-results/rotation-ramp.png
.venv/bin/loopwright bench loop --scenario scenarios/gradual-thickness.toml --seeds 5 --degraded-checks 2 --json bench/loop-results/gradual-thickness.json --plot bench/loop-results/gradual-thickness.png
.venv/bin/loopwright bench loop --scenario scenarios/no-drift.toml --seeds 5 --policies static,loop-uncertainty,loop-random --multipliers 1 --degraded-checks 2 --json bench/loop-results/no-drift.json --plot bench/loop-results/no-drift.png
for sc in sudden-inversion label-shift noise-burst; do
  .venv/bin/loopwright bench loop --scenario scenarios/$sc.toml --seeds 5 --policies static,loop-uncertainty,loop-random,oracle --multipliers 1 --degraded-checks 2 --json bench/loop-results/$sc.json --plot bench/loop-results/$sc.png
done

# Session-1 results (recovery trigger mode of that time, no relative expectations) are in git
# history (commit 009615b); exploration runs of one seed are in explore/ (session 1) and in
# bench/RESULTS.md's table of what was tried (session 2).
