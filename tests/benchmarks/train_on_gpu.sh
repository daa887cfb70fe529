#!/usr/bin/env bash
# Train several small transducers side by side on one CUDA GPU from a packed corpus, and bring back
# what `asr export` and `asr eval` need. One call, bounded in time, for a GPU machine lent briefly.
#
#   bash tests/benchmarks/train_on_gpu.sh PACK_DIR OUT_DIR RUNS_FILE
#
# PACK_DIR   made by `python tests/benchmarks/corpus_pack.py pack ...` (synth-train, synth-dev), plus
#            optionally PACK_DIR/cache/ copied into the unpacked data dir (e.g. a room impulse response bank).
# OUT_DIR    receives, per run named m-*, NAME.pt (the best checkpoint's EMA weights in float16, no
#            optimizer state, split into NAME.pt.part-* when over PART_MIB), and logs.tgz (every run's
#            log, config, checkpoint index and curves). Runs named otherwise are ablations: their curves
#            are what counts, and the machine returns few files.
# RUNS_FILE  one run per line: NAME START_AFTER_CACHE(0|1) asr-train-flags...; '#' starts a comment.
#            The first run builds the feature caches; runs marked 1 start once it has taken its
#            first step, so that the caches are built once, not once per run.
#
# Why several runs at once: a 5M-parameter model's kernels are far too small to fill a large GPU,
# so concurrent runs cost little more wall time than one.
set -uo pipefail

pack=$1 out=$2 runs_file=$3
work=${WORK:-/tmp/asr-gpu}
PART_MIB=${PART_MIB:-15}
DEADLINE=${DEADLINE:-520}  # seconds after start: runs still going are stopped, their last checkpoints kept
mkdir -p "$work/logs" "$work/exp" "$out"
export PYTHONUNBUFFERED=1

if ! python3 -c "import soundfile, soxr" 2>/dev/null; then
  # The GPU image lacks these two (and soundfile's cffi); the caller carries their wheels in $WHEELS (default .whl/).
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/asr-site "${WHEELS:-.whl}"/*.whl || exit 1
  export PYTHONPATH=/tmp/asr-site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
nproc

SECONDS=0
python3 tests/benchmarks/corpus_pack.py unpack --pack "$pack" --data "$work/data" || exit 1
if [ -d "$pack/cache" ]; then cp -r "$pack/cache/." "$work/data/"; fi
echo "unpacked in ${SECONDS}s"

launch() {  # NAME flags...: one `asr train` in the background, its log in $work/logs
  local name=$1; shift
  python3 cli.py train --data "$work/data" --subsets synth-train --dev-subsets synth-dev \
    --exp-dir "$work/exp/$name" --device "${DEVICE:-cuda}" "$@" < /dev/null > "$work/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name (pid $!) at ${SECONDS}s: $*"
}

pids=()
training() {  # true while any launched run is alive
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}

first=""
while read -r name after flags; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ -z "$first" ]]; then
    first=$name
    launch "$name" $flags
  else
    if [[ "$after" == 1 ]]; then
      until grep -q "^step " "$work/logs/$first.log" 2>/dev/null || ! training; do sleep 2; done
    fi
    launch "$name" $flags
  fi
done < "$runs_file"

while training; do
  sleep 20
  if (( SECONDS > DEADLINE )); then echo "deadline: stopping the runs still going"; kill "${pids[@]}" 2>/dev/null; sleep 5; fi
  echo "--- ${SECONDS}s"; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  for log in "$work"/logs/*.log; do echo "$(basename "$log" .log): $(grep -a 'dev WER\|Error' "$log" | tail -1)"; done
done
echo "all runs ended at ${SECONDS}s"

for exp in "$work"/exp/m-*/; do
  name=$(basename "$exp")
  python3 tests/benchmarks/slim_checkpoint.py "$exp" "$out/$name.pt" || echo "no checkpoint from $name"
  if [ -f "$out/$name.pt" ] && [ "$(stat -c %s "$out/$name.pt")" -gt $((PART_MIB * 1048576)) ]; then
    split -b "${PART_MIB}M" -d "$out/$name.pt" "$out/$name.pt.part-" && rm "$out/$name.pt"
  fi
done
tar czf "$out/logs.tgz" -C "$work" logs $(cd "$work" && ls exp/*/config.json exp/*/curves.png exp/*/checkpoints.json 2>/dev/null)
ls -la "$out"
