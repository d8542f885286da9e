#!/usr/bin/env bash
# The short, complete runs that chose the shipped weights' recipe (docs/weights.md, "How the recipe was
# chosen"): 150 steps each, two at a time with one thread each (about 16 minutes per pair on 2 cores),
# each scored on the held-out split by `vader-hub eval` at the README's settings.
#
#   bash benchmarks/recipe_search.sh split/ search-runs      # split/: `vader-hub eval split photos --split-rules docs/splits/offline-photos.json --out split`
set -euo pipefail
split=${1:?usage: recipe_search.sh SPLIT_DIR OUT_DIR}
out=${2:?usage: recipe_search.sh SPLIT_DIR OUT_DIR}
mkdir -p "$out"
common=(--preset paper --model vader_r18_fpn --data "$split/train.txt" --image-size 128 --batch-size 32
        --bn-group-size 8 --steps 150 --base-lr 0.3 --warmup-steps 15 --momentum 0.99 --queue-size 8192
        --max-rotation-degrees 25 --homography-strength 0.1 --seed 0 --checkpoint-every 50 --log-every 10
        --no-progress --num-workers 1)
native_scale=(--source-short-side 288 --crop-scale-min 0.08 --crop-scale-max 0.4)  # views at the eval's scale

run() {  # NAME [train flags...]: train in the background with one thread
  local name=$1
  shift
  OMP_NUM_THREADS=1 python -m vader_hub.train "${common[@]}" --out "$out/$name" "$@" > "$out/$name.log" 2>&1 &
}

score() {  # NAME: the run's PCK row on the held-out photos
  vader-hub eval --photos "$split/eval.txt" --weights "$out/$1/export/model.safetensors" --random-seeds \
    --no-sift --no-patches --seed 0 --out "$out/$1/eval" > "$out/$1.eval.log" 2>&1
  echo "$1: $(sed -n 3p "$out/$1/eval/eval.md")"
}

run A_recipe_scale
run B_native_scale "${native_scale[@]}"
wait
run C_in_image --in-image-negatives
run D_native_in_image "${native_scale[@]}" --in-image-negatives
wait
for name in A_recipe_scale B_native_scale C_in_image D_native_in_image; do score "$name"; done
