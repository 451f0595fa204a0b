#!/usr/bin/env bash
set -euo pipefail
# The main job: checks -> seed pool -> recipe -> validation -> 200k cap -> LLaVA json -> pretrain -> finetune ->
# TextVQA + MMBench -> local scores -> output/train.sh.
#
#   bash train_mgm_2b_stage_1.sh
#
# With the real models and data downloaded (bash download.sh) it runs the official pipeline on the
# GPUs it sees. Where they are absent it says so and runs the embedded demo (tiny random models,
# synthetic data, built on first use) on CPU or GPU: same code, same files, meaningless scores.
# Only the "Editable Part" is meant to be changed (as in the official kit). Every step prints its
# duration. Every artefact records what it was made from (bettersynth.provenance): a re-run skips a
# step only when its recorded inputs and settings equal the current ones (else it says what changed
# and redoes it), and resumes an interrupted training stage made from the same inputs. The job holds
# the output tree's lock: a second job in the same output/ stops at once, naming this one.

############################################################################
########################### Editable Part Begins ###########################
############################################################################
# Each value can also be set from the environment for one run, e.g. EXP_NAME=try2 bash $0.

# exp meta information
EXP_NAME=${EXP_NAME:-default}
# optional Data-Juicer recipe run first on the seed pool; its export becomes PRETRAIN_DATASET
# (set it to "" to train on an existing PRETRAIN_DATASET). Relative paths are relative to this
# script's folder. The export's default is in the output tree (BSYNTH_OUTPUT moves it with the rest:
# two jobs in two trees never share it).
RECIPE=${RECIPE-solution/recipes/baseline_recaption.yaml}
PRETRAIN_DATASET=${PRETRAIN_DATASET:-${BSYNTH_OUTPUT:-output}/processed_data/processed_data.jsonl}
PRETRAIN_DATASET_IMAGE_PATH=${PRETRAIN_DATASET_IMAGE_PATH:-input/pretrain_stage_1_10k}

# training args
# pretraining: PRETRAIN_BATCH_SIZE_PER_GPU * PRETRAIN_GRADIENT_ACCUMULATION_STEPS * num_gpus = 256
# "auto": chosen from the GPUs' memory by `bsynth plan-batch` (the largest micro-batch up to 16 that
# fits; 16 x 16 on one 80 GB GPU: bench/RESULTS.md, 61.7 samples/s, 35 GiB, compiled, no checkpointing)
PRETRAIN_BATCH_SIZE_PER_GPU=${PRETRAIN_BATCH_SIZE_PER_GPU:-auto}
PRETRAIN_GRADIENT_ACCUMULATION_STEPS=${PRETRAIN_GRADIENT_ACCUMULATION_STEPS:-auto}
PRETRAIN_GRADIENT_CHECKPOINTING=${PRETRAIN_GRADIENT_CHECKPOINTING:-False}
PRETRAIN_DATALOADER_NUM_WORKERS=${PRETRAIN_DATALOADER_NUM_WORKERS:-8}
# finetuning: FINETUNE_BATCH_SIZE_PER_GPU * FINETUNE_GRADIENT_ACCUMULATION_STEPS * num_gpus = 128
# "auto" as above (16 x 8 on one 80 GB GPU: 33.8 samples/s, 65 GiB, compiled, with checkpointing);
# checkpointing "auto": off where 16 per GPU fits without it (a 141 GB H200), else on (True/False force it)
FINETUNE_BATCH_SIZE_PER_GPU=${FINETUNE_BATCH_SIZE_PER_GPU:-auto}
FINETUNE_GRADIENT_ACCUMULATION_STEPS=${FINETUNE_GRADIENT_ACCUMULATION_STEPS:-auto}
FINETUNE_GRADIENT_CHECKPOINTING=${FINETUNE_GRADIENT_CHECKPOINTING:-auto}
FINETUNE_DATALOADER_NUM_WORKERS=${FINETUNE_DATALOADER_NUM_WORKERS:-8}
# torch.compile the LLM layers and the ConvNeXt stages on GPUs (same math; a minute or two of compiling
# at the start of each stage); False runs them eagerly
TORCH_COMPILE=${TORCH_COMPILE:-True}
# ZeRO-2 with the optimizer on the GPU; toolkit/configs/deepspeed/zero2_offload.json (optimizer on
# the CPU, as the official kit) for GPUs under 80 GB
DEEPSPEED_CONFIG=${DEEPSPEED_CONFIG:-toolkit/configs/deepspeed/zero2.json}
# log and ckpt
LOGGING_STEP=${LOGGING_STEP:-1}
CKPT_SAVE_STEPS=${CKPT_SAVE_STEPS:-100}
TOTAL_SAVE_CKPT_LIMIT=${TOTAL_SAVE_CKPT_LIMIT:-1}

# more than one machine (README "More than one machine"); every node needs this checkout and the models
# and data at the same paths, and output/ on storage all nodes share. Either HOSTFILE: deepspeed's
# "host slots=N" lines, run this script once on the first host (it reaches the others by passwordless
# ssh), or one launch per node: the same script on every node with NNODES, its NODE_RANK (0..NNODES-1)
# and MASTER_ADDR (node 0's address). MASTER_PORT: the rendezvous port on node 0 (also on one machine:
# two jobs on one host need two ports). Only node 0 prepares the data, evaluates and scores.
HOSTFILE=${HOSTFILE-}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR-}
MASTER_PORT=${MASTER_PORT:-29500}

# inference args: one eval shard per listed GPU of node 0, e.g. "0,1,2,3"
INFER_CUDA_IDX=${INFER_CUDA_IDX:-0}

# experiments: the training seed of both stages (1024: the official value); a proxy budget pretrains on
# a seeded subset of N samples of the capped data, everything else official (empty: the official run;
# `bsynth pack` refuses a proxy run); every run is recorded in output/experiments/$EXP_NAME/run.json
SEED=${SEED:-1024}
PROXY_PRETRAIN_SAMPLES=${PROXY_PRETRAIN_SAMPLES-}

############################################################################
############################ Editable Part Ends ############################
############################################################################

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
case "$TORCH_COMPILE" in
    True|False) ;;
    *) echo "TORCH_COMPILE must be True or False, got '$TORCH_COMPILE'" >&2; exit 2 ;;
esac

MAX_SAMPLE_NUM=200000  # the challenge's pretraining cap

step_number=0
RECORD_ARGS=()
step() {  # step NAME COMMAND...: runs one step, prints its duration, updates the run record, stops the job on failure
    local name=$1; shift
    step_number=$((step_number + 1))
    local start=$SECONDS
    echo "==> [$step_number] $name"
    "$@"
    local took=$((SECONDS - start))
    echo "==> [$step_number] $name: done in $took s"
    if [ ${#RECORD_ARGS[@]} -gt 0 ]; then bsynth runs record "$EXP_NAME" "${RECORD_ARGS[@]}"; fi
}
skip() { echo "==> [skip] $*"; }
# run_logged LOG COMMAND...: output to the terminal and appended to LOG; the exit status is the command's
run_logged() { local log=$1; shift; "$@" 2>&1 | tee -a "$log"; }

export BSYNTH_ROOT=${BSYNTH_ROOT:-$SCRIPT_DIR}  # every bsynth call works in this checkout
# The one decision "real assets or the demo?" (BSYNTH_LAYOUT=real|demo|auto; auto stops naming what is
# missing when only some real assets are there), with the asset paths and the settings that depend on
# it: the GPUs seen (NUM_GPUS), the machines (NODES, from HOSTFILE or NNODES/NODE_RANK/MASTER_*:
# TRAINING_PROCESSES counts every node's), the stages' global batches (256 / 128; the demo's 8 and 4 per training
# process), "auto" batch values planned from the GPUs' memory, and the demo's scaled values and name
# (EXP_NAME, or "demo" for the default) (bettersynth/job_settings.py); Editable Part values the later
# steps read are checked there first.
job_values=()
for key in EXP_NAME PRETRAIN_BATCH_SIZE_PER_GPU PRETRAIN_GRADIENT_ACCUMULATION_STEPS PRETRAIN_GRADIENT_CHECKPOINTING \
    FINETUNE_BATCH_SIZE_PER_GPU FINETUNE_GRADIENT_ACCUMULATION_STEPS FINETUNE_GRADIENT_CHECKPOINTING \
    TORCH_COMPILE DEEPSPEED_CONFIG HOSTFILE NNODES NODE_RANK MASTER_ADDR MASTER_PORT LOGGING_STEP CKPT_SAVE_STEPS \
    TOTAL_SAVE_CKPT_LIMIT PRETRAIN_DATALOADER_NUM_WORKERS FINETUNE_DATALOADER_NUM_WORKERS INFER_CUDA_IDX; do
    job_values+=(--editable "$key=${!key}")
done
layout_variables=$(bsynth layout --which "${BSYNTH_LAYOUT:-auto}" --format shell "${job_values[@]}")
eval "$layout_variables"
# paths and names the job will use: refused here, before any work, when the pipeline cannot carry them
bsynth check-paths --name "EXP_NAME=$EXP_NAME" ${RECIPE:+--file "RECIPE=$RECIPE"} \
    "PRETRAIN_DATASET=$PRETRAIN_DATASET" "PRETRAIN_DATASET_IMAGE_PATH=$PRETRAIN_DATASET_IMAGE_PATH"
mkdir -p "$OUTPUT_DIR"
if [ "$NODE_RANK" -gt 0 ]; then
    # the other nodes only train, inside node 0's job: its lock covers them
    echo "Node $NODE_RANK of $NNODES: training only, with node 0 at $MASTER_ADDR:$MASTER_PORT (node 0 prepares the data, evaluates and scores)."
else
    # one job per output tree: the lock is held by this shell's descriptor 9 until the job ends
    exec 9<>"$OUTPUT_DIR/.bsynth.lock"
    bsynth lock take --fd 9 --pid $$ --holder "bash train_mgm_2b_stage_1.sh, EXP_NAME=$EXP_NAME" --tree "$OUTPUT_DIR"
    export BSYNTH_LOCK_HELD=$OUTPUT_DIR
    # on any exit but a kill the holder's note is cleared, so the next job does not "take over" from it
    trap ': > "$OUTPUT_DIR/.bsynth.lock"' EXIT
fi
# torch.compile's kernels are kept in the output tree, one folder per node (KERNEL_CACHE_DIR from
# `bsynth layout`): a later run in this tree finds most of its stages' first-step compiling done
# (~85 s of a proxy run)
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$KERNEL_CACHE_DIR}
if [ "$LAYOUT_MODE" = demo ] && [ "$NODE_RANK" -eq 0 ]; then
    echo "Real models/data not found under $SCRIPT_DIR (run download.sh for them): running the embedded demo from $ASSETS_ROOT (tiny random models, synthetic data; scores are meaningless)."
    step "build the demo assets" bsynth demo build
    echo "Demo settings: pretrain global batch $PRETRAIN_GLOBAL_BATCH ($PRETRAIN_BATCH_SIZE_PER_GPU per GPU x $PRETRAIN_GRADIENT_ACCUMULATION_STEPS accumulation x $TRAINING_PROCESSES process(es)), finetune global batch $FINETUNE_GLOBAL_BATCH ($FINETUNE_BATCH_SIZE_PER_GPU x $FINETUNE_GRADIENT_ACCUMULATION_STEPS x $TRAINING_PROCESSES), aux size $AUX_SIZE, EXP_NAME=$EXP_NAME, no torch.compile, eval answers of at most $EVAL_MAX_NEW_TOKENS new tokens."
elif [ "$LAYOUT_MODE" = real ] && [ -n "$EVAL_MAX_NEW_TOKENS" ]; then
    echo "BSYNTH_EVAL_MAX_NEW_TOKENS=$EVAL_MAX_NEW_TOKENS: eval answers stop after $EVAL_MAX_NEW_TOKENS new tokens (for timing random-weight models: not a run to submit)."
fi

PRETRAIN_NAME=MGM-2B-Pretrain-$EXP_NAME
FINETUNE_NAME=MGM-2B-Finetune-$EXP_NAME
PRETRAIN_DIR=$OUTPUT_DIR/training_dirs/$PRETRAIN_NAME
FINETUNE_DIR=$OUTPUT_DIR/training_dirs/$FINETUNE_NAME
SAMPLED_PRETRAIN_DATASET=$PRETRAIN_DATASET-200k.jsonl
PRETRAIN_SAMPLES_FILE=$SAMPLED_PRETRAIN_DATASET
if [ -n "$PROXY_PRETRAIN_SAMPLES" ]; then
    PRETRAIN_SAMPLES_FILE=$SAMPLED_PRETRAIN_DATASET-proxy$PROXY_PRETRAIN_SAMPLES-seed$SEED.jsonl
fi
PRETRAIN_DATASET_JSON=$PRETRAIN_SAMPLES_FILE.json
EVAL_DIR=$OUTPUT_DIR/eval_results/$FINETUNE_NAME
TEXTVQA_ANSWERS=$EVAL_DIR/textvqa/bm1.jsonl
MMBENCH_UPLOAD=$EVAL_DIR/mmbench/answers_upload/mmbench_dev_20230712/$FINETUNE_NAME.xlsx

# --- checks first (they cost seconds), then data: recipe, validation, cap, conversion -------
# the run record (output/experiments/$EXP_NAME/run.json) holds every Editable Part value as resolved
if [ "$NODE_RANK" -eq 0 ]; then
    RECORD_ARGS=(--data-root "$ASSETS_ROOT")
    for key in EXP_NAME RECIPE PRETRAIN_DATASET PRETRAIN_DATASET_IMAGE_PATH PRETRAIN_BATCH_SIZE_PER_GPU \
        PRETRAIN_GRADIENT_ACCUMULATION_STEPS PRETRAIN_GRADIENT_CHECKPOINTING PRETRAIN_DATALOADER_NUM_WORKERS \
        FINETUNE_BATCH_SIZE_PER_GPU FINETUNE_GRADIENT_ACCUMULATION_STEPS FINETUNE_GRADIENT_CHECKPOINTING \
        FINETUNE_DATALOADER_NUM_WORKERS TORCH_COMPILE DEEPSPEED_CONFIG LOGGING_STEP CKPT_SAVE_STEPS \
        TOTAL_SAVE_CKPT_LIMIT INFER_CUDA_IDX SEED PROXY_PRETRAIN_SAMPLES; do
        RECORD_ARGS+=(--editable "$key=${!key-}")
    done
    # each step's artefact: its made-from record says when it was made (the record's step times, wall time)
    if [ -n "$RECIPE" ]; then RECORD_ARGS+=(--made "recipe=$PRETRAIN_DATASET"); fi
    RECORD_ARGS+=(--made "validate=$PRETRAIN_DATASET.validation.json" --made "cap=$SAMPLED_PRETRAIN_DATASET")
    if [ -n "$PROXY_PRETRAIN_SAMPLES" ]; then RECORD_ARGS+=(--made "proxy=$PRETRAIN_SAMPLES_FILE"); fi
    RECORD_ARGS+=(--made "convert=$PRETRAIN_DATASET_JSON" --made "pretrain=$PRETRAIN_DIR"
                  --made "finetune=$FINETUNE_DIR" --made "textvqa=$TEXTVQA_ANSWERS" --made "mmbench=$MMBENCH_UPLOAD"
                  --made "scores=$EVAL_DIR/scores.json")
    bsynth runs record "$EXP_NAME" "${RECORD_ARGS[@]}"
fi
# over the whole world: every node's training processes
step "check the pretrain global batch" \
    bsynth check-batch "$PRETRAIN_BATCH_SIZE_PER_GPU" "$PRETRAIN_GRADIENT_ACCUMULATION_STEPS" "$PRETRAIN_GLOBAL_BATCH" \
        --num-gpus "$TRAINING_PROCESSES"
step "check the finetune global batch" \
    bsynth check-batch "$FINETUNE_BATCH_SIZE_PER_GPU" "$FINETUNE_GRADIENT_ACCUMULATION_STEPS" "$FINETUNE_GLOBAL_BATCH" \
        --num-gpus "$TRAINING_PROCESSES"
if [ "$NODE_RANK" -gt 0 ]; then
    skip "data steps: node 0 writes $PRETRAIN_DATASET_JSON to the shared output folder"
else
    if [ -n "$RECIPE" ]; then
        # reused only when its record shows the same recipe operators, seed pool, operator code and models
        step "recipe $RECIPE -> $PRETRAIN_DATASET" \
            bsynth recipe run "$RECIPE" --dataset "$SEED_JSONL" --export "$PRETRAIN_DATASET" \
                --models-root "$RECIPE_MODELS_DIR" --skip-unchanged
    fi
    step "validate $PRETRAIN_DATASET" \
        bsynth step --name validate --output "$PRETRAIN_DATASET.validation.json" \
            --input "curated data=$PRETRAIN_DATASET" --input "seed records=$STAGE1_JSON" \
            --input "image root=$PRETRAIN_DATASET_IMAGE_PATH" -- \
        bsynth validate "$PRETRAIN_DATASET" --image-root "$PRETRAIN_DATASET_IMAGE_PATH" --original "$STAGE1_JSON" \
            --report "$PRETRAIN_DATASET.validation.json"
    step "cap at $MAX_SAMPLE_NUM samples" \
        bsynth step --name cap --output "$SAMPLED_PRETRAIN_DATASET" \
            --input "curated data=$PRETRAIN_DATASET" --setting "max samples=$MAX_SAMPLE_NUM" -- \
        bsynth sample "$PRETRAIN_DATASET" "$SAMPLED_PRETRAIN_DATASET" "$MAX_SAMPLE_NUM"
    if [ -n "$PROXY_PRETRAIN_SAMPLES" ]; then
        step "proxy budget: $PROXY_PRETRAIN_SAMPLES pretraining samples (seed $SEED)" \
            bsynth step --name proxy --output "$PRETRAIN_SAMPLES_FILE" --input "capped data=$SAMPLED_PRETRAIN_DATASET" \
                --setting "samples=$PROXY_PRETRAIN_SAMPLES" --setting "seed=$SEED" -- \
            bsynth sample "$SAMPLED_PRETRAIN_DATASET" "$PRETRAIN_SAMPLES_FILE" "$PROXY_PRETRAIN_SAMPLES" --seed "$SEED"
    fi
    step "convert to LLaVA json" \
        bsynth step --name convert --output "$PRETRAIN_DATASET_JSON" \
            --input "capped data=$PRETRAIN_SAMPLES_FILE" --input "seed records=$STAGE1_JSON" -- \
        bsynth dj2llava "$PRETRAIN_SAMPLES_FILE" "$PRETRAIN_DATASET_JSON" \
            --image_special_token "<__dj__image>" --restore_questions True \
            --original_llava_ds_path "$STAGE1_JSON" --image-root "$PRETRAIN_DATASET_IMAGE_PATH"
fi

# --- training ---------------------------------------------------------------------------------
# this node's processes, started as NODES says (one node, a hostfile over ssh, or this node of NNODES)
if [ "$NUM_GPUS" -gt 0 ]; then
    launch=(bsynth launch --nodes "$NODES" -- --deepspeed "$DEEPSPEED_CONFIG"
            --bf16 True --tf32 True --torch_compile "$TORCH_COMPILE")
else
    echo "No GPU visible: training on CPU in float32 with plain PyTorch (no deepspeed engine)."
    launch=(bsynth launch --nodes "$NODES" -- --bf16 False --tf32 False)
fi
# node 0 keeps the logs' official names; another node's output goes to a log of its own
LOG_SUFFIX=
if [ "$NODE_RANK" -gt 0 ]; then LOG_SUFFIX=.node$NODE_RANK; fi
common_args=(--model_name_or_path "$LLM_DIR" --version gemma
             --vision_tower "$VISION_TOWER_DIR" --vision_tower_aux "$VISION_TOWER_AUX_DIR"
             --mm_projector_type mlp2x_gelu --mm_vision_select_layer -2 --image_size_aux "$AUX_SIZE"
             --num_train_epochs 1 --weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type cosine
             --model_max_length 2048 --logging_steps "$LOGGING_STEP"
             --save_steps "$CKPT_SAVE_STEPS" --save_total_limit "$TOTAL_SAVE_CKPT_LIMIT" --report_to none
             --seed "$SEED")

mkdir -p "$PRETRAIN_DIR" "$FINETUNE_DIR"
step "pretrain -> $PRETRAIN_DIR" run_logged "$PRETRAIN_DIR/pretrain$LOG_SUFFIX.log" \
    "${launch[@]}" "${common_args[@]}" \
    --data_path "$PRETRAIN_DATASET_JSON" --image_folder "$PRETRAIN_DATASET_IMAGE_PATH" \
    --stage pretrain --tune_mm_mlp_adapter True --learning_rate 1e-3 --output_dir "$PRETRAIN_DIR" \
    --gradient_checkpointing "$PRETRAIN_GRADIENT_CHECKPOINTING" \
    --per_device_train_batch_size "$PRETRAIN_BATCH_SIZE_PER_GPU" \
    --gradient_accumulation_steps "$PRETRAIN_GRADIENT_ACCUMULATION_STEPS" \
    --dataloader_num_workers "$PRETRAIN_DATALOADER_NUM_WORKERS"

step "finetune -> $FINETUNE_DIR" run_logged "$FINETUNE_DIR/finetuning$LOG_SUFFIX.log" \
    "${launch[@]}" "${common_args[@]}" \
    --data_path "$FINETUNE_JSON" --image_folder "$FINETUNE_IMAGE_DIR" \
    --pretrain_mm_mlp_adapter "$PRETRAIN_DIR/mm_projector.bin" \
    --image_aspect_ratio pad --group_by_modality_length True \
    --stage finetune --learning_rate 2e-5 --output_dir "$FINETUNE_DIR" \
    --gradient_checkpointing "$FINETUNE_GRADIENT_CHECKPOINTING" \
    --per_device_train_batch_size "$FINETUNE_BATCH_SIZE_PER_GPU" \
    --gradient_accumulation_steps "$FINETUNE_GRADIENT_ACCUMULATION_STEPS" \
    --dataloader_num_workers "$FINETUNE_DATALOADER_NUM_WORKERS"
if [ "$NODE_RANK" -gt 0 ]; then
    echo "Node $NODE_RANK of $NNODES: training done; node 0 evaluates, scores and records the run. This node stops here."
    exit 0
fi

# --- evaluation, scores, the script itself ------------------------------------------------------
# each eval reruns when the finetuned checkpoint (its record changes with every training run) or its
# questions changed; the eval data come from the layout chosen above, like everything else; on GPUs
# of 34 GiB and more both run at once (EVAL_SIDE_BY_SIDE from `bsynth layout`)
textvqa_eval=(bsynth step --name textvqa --output "$TEXTVQA_ANSWERS"
    --input "checkpoint=$FINETUNE_DIR" --input "questions=$TEXTVQA_QUESTIONS" --
    bash toolkit/eval/textvqa.sh --data-root "$ASSETS_ROOT" "$FINETUNE_NAME" "$INFER_CUDA_IDX"
    ${EVAL_MAX_NEW_TOKENS:+--max-new-tokens "$EVAL_MAX_NEW_TOKENS"})
mmbench_eval=(bsynth step --name mmbench --output "$MMBENCH_UPLOAD"
    --input "checkpoint=$FINETUNE_DIR" --input "questions=$MMBENCH_TSV" --
    bash toolkit/eval/mmbench.sh --data-root "$ASSETS_ROOT" "$FINETUNE_NAME" mmbench_dev_20230712 "$INFER_CUDA_IDX"
    ${EVAL_MAX_NEW_TOKENS:+--max-new-tokens "$EVAL_MAX_NEW_TOKENS"})
if [ "$EVAL_SIDE_BY_SIDE" = True ]; then
    # GPUs with room for two evals (bettersynth.job_settings): one eval fills the other's idle GPU time
    source toolkit/eval/side_by_side.sh
    step "TextVQA and MMBench inference, side by side" side_by_side textvqa_eval mmbench_eval
else
    step "TextVQA inference" "${textvqa_eval[@]}"
    step "MMBench inference" "${mmbench_eval[@]}"
fi
step "local scores -> $EVAL_DIR/scores.json" \
    bsynth step --name scores --output "$EVAL_DIR/scores.json" \
        --input "textvqa answers=$TEXTVQA_ANSWERS" --input "mmbench answers=$MMBENCH_UPLOAD" -- \
    bsynth score run "$EVAL_DIR" --data-root "$ASSETS_ROOT"
cp "$SCRIPT_DIR/train_mgm_2b_stage_1.sh" "$OUTPUT_DIR/train.sh"

echo "Training and inference done."
echo "Checkpoints: $PRETRAIN_DIR, $FINETUNE_DIR"
echo "Answers and scores: $EVAL_DIR"
if [ -n "$PROXY_PRETRAIN_SAMPLES" ]; then
    echo "A proxy run (PROXY_PRETRAIN_SAMPLES=$PROXY_PRETRAIN_SAMPLES): compare it with 'bsynth runs' and 'bsynth report'; 'bsynth pack' refuses it."
else
    echo "Package a submission with: bsynth pack --exp ${EXP_NAME@Q} --out submit.zip"
fi
