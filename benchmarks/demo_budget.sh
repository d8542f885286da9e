#!/usr/bin/env bash
# Where training overtakes random init, measured like `vader-hub demo` evaluates: the README's table
# "The demo's budget". Every run is a complete schedule; about 20 minutes on 2 cores.
#
#   bash benchmarks/demo_budget.sh split/train.txt budget-runs      # split/: `vader-hub eval split photos`
set -euo pipefail
train_list=${1:?usage: demo_budget.sh TRAIN_LIST OUT_DIR}
out=${2:?usage: demo_budget.sh TRAIN_LIST OUT_DIR}
mkdir -p "$out"
held_out=$(python -c "from importlib.resources import files; print(files('vader_hub') / 'assets' / 'chelsea.jpg')")
bundled="$out/bundled.txt"
python -c "
from importlib.resources import files
from vader_hub.demo import TRAIN_PHOTOS
print('\n'.join(str(files('vader_hub') / 'assets' / name) for name in TRAIN_PHOTOS))" > "$bundled"

demo_views=(--preset smoke --image-size 96 --source-short-side 128 --max-rotation-degrees 25 --homography-strength 0.1)
# The smoke preset shrinks sources to 80 px: the checkpoint read them at image_size * 8 / 7 (none).
checkpoint_views=(--preset smoke --image-size 128 --source-short-side none --batch-size 32 --bn-group-size 8
                  --base-lr 0.3 --queue-size 4096 --queue-keys-per-image 8 --max-rotation-degrees 25
                  --homography-strength 0.1)

run() {  # NAME DATA [train flags...]: train, then evaluate on the held-out photo
  local name=$1 data=$2
  shift 2
  local start=$SECONDS
  python -m vader_hub.train --data "$data" --out-dir "$out/$name" --no-progress --log-every 50 \
    --checkpoint-every 100000 --weights-tag budget "$@" > "$out/$name.log" 2>&1 \
    || { echo "$name: training failed, see $out/$name.log" >&2; exit 1; }
  echo "$name: training $((SECONDS - start)) s" | tee -a "$out/times.txt"
  vader-hub eval --photos "$held_out" --weights "$out/$name/export/model.safetensors" --long-side 256 \
    --out-dir "$out/$name/eval" > "$out/$name.eval.log" 2>&1 \
    || { echo "$name: evaluation failed, see $out/$name.eval.log" >&2; exit 1; }
  head -4 "$out/$name/eval/eval.md" | tail -2
}

run demo "$bundled" "${demo_views[@]}" --steps 500 --warmup-steps 50 --batch-size 4 --bn-group-size 2 --base-lr 2.0
run photos66_b16 "$train_list" "${demo_views[@]}" --steps 250 --warmup-steps 25 --batch-size 16 --bn-group-size 8 \
  --base-lr 0.5 --queue-size 4096 --queue-keys-per-image 8
run recipe_60 "$train_list" "${checkpoint_views[@]}" --steps 60 --warmup-steps 6
run recipe_150 "$train_list" "${checkpoint_views[@]}" --steps 150 --warmup-steps 15
