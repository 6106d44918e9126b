#!/usr/bin/env bash
# Run both parts of the project end to end, write every result into evaluation/ and build the
# write-up in latex/. Run `bash run_all.sh --help` for the flags.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
    cat <<'EOF'
Usage: bash run_all.sh [options]

Set up .venv, fetch what is missing, run Part 1 (four training runs, evaluation, comparison,
benchmark) and Part 2 (parity check, generation samples and chat transcript, benchmark, the
executed Tokenizer Lab), write every result into evaluation/, then build latex/report.pdf.
Steps whose outputs are complete are skipped; each step's log is evaluation/logs/<step>.log.

Options:
  --smoke              offline check of every step in minutes: generated images, random weights,
                       a tiny random Qwen3 checkpoint; every artifact and the PDF say SMOKE
  --force              redo steps even when their outputs are complete
  --only PART          run only PART: part1, part2 or report (the report is rebuilt after part1
                       or part2 as well)
  --download-only      fetch Oxford-IIIT Pet, the timm ImageNet weights and Qwen/Qwen3-0.6B, then stop
  --offline            never touch the network; inputs must be local (see the three dirs below)
  --data-dir DIR       folder that holds oxford-iiit-pet/{images,annotations}
                       (default: data/, or a generated dataset under --smoke)
  --model-dir DIR      Qwen3 checkpoint directory (default: the Hugging Face cache, or a tiny
                       random checkpoint under --smoke)
  --tokenizer-dir DIR  Qwen3 tokenizer directory (default: part2/tokenizer/ or the model dir, or a
                       small byte-level BPE built on the fly under --smoke)
  --package            only write submission.zip from the current latex/ and evaluation/
  --quiet              print one line per step instead of each step's output
  -h, --help           show this help and exit

Examples:
  bash run_all.sh                         # full profile (GPU-sized)
  bash run_all.sh --smoke                 # about 3 to 5 minutes on 2 CPU cores, nothing downloaded
  bash run_all.sh --download-only         # on a machine with internet
  bash run_all.sh --offline --data-dir /data/pets --model-dir /models/Qwen3-0.6B
EOF
}

usage_error() {
    echo "error: $1" >&2
    echo "Run 'bash run_all.sh --help' for the options." >&2
    exit 2
}

# settings

profile=full
force=0
only=all
download_only=0
offline=0
package_only=0
quiet=0
data_dir=""
model_dir=""
tokenizer_dir=""

while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) profile=smoke ;;
        --force) force=1 ;;
        --download-only) download_only=1 ;;
        --offline) offline=1 ;;
        --package) package_only=1 ;;
        --quiet) quiet=1 ;;
        -h|--help) usage; exit 0 ;;
        --only|--data-dir|--model-dir|--tokenizer-dir)
            [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"
            case "$1" in
                --only) only="$2" ;;
                --data-dir) data_dir="$2" ;;
                --model-dir) model_dir="$2" ;;
                --tokenizer-dir) tokenizer_dir="$2" ;;
            esac
            shift ;;
        *) usage_error "unknown option '$1'" ;;
    esac
    shift
done

case "$only" in
    all|part1|part2|report) ;;
    *) usage_error "--only '$only' is invalid; use part1, part2 or report" ;;
esac
if [ "$download_only" -eq 1 ] && [ "$offline" -eq 1 ]; then
    usage_error "--download-only and --offline contradict each other; use one of them"
fi
if [ "$download_only" -eq 1 ] && [ "$profile" = smoke ]; then
    usage_error "--smoke needs no downloads; drop --download-only"
fi

# Relative directories given by the user stay valid after the `cd` above only when made absolute.
absolute_path() { case "$1" in /*) echo "$1" ;; *) echo "$OLDPWD/$1" ;; esac; }
[ -z "$data_dir" ] || data_dir="$(absolute_path "$data_dir")"
[ -z "$model_dir" ] || model_dir="$(absolute_path "$model_dir")"
[ -z "$tokenizer_dir" ] || tokenizer_dir="$(absolute_path "$tokenizer_dir")"

python=.venv/bin/python
eval_dir=evaluation
logs_dir="$eval_dir/logs"
runs_dir="runs/$profile"
smoke_dir="checkpoints/smoke"

part1_models=(resnet50 swin_t)
part1_modes=(feature_extraction finetune)

# Part 1 recipes. Full: ImageNet weights at 224 px with part1.train's defaults for epochs and
# batch size (its early stopping may end a run sooner). Smoke: random weights, tiny images and two
# epochs, so that every curve has two points.
if [ "$profile" = full ]; then
    image_size=224
    epochs_feature_extraction=15
    epochs_finetune=15
    batch_feature_extraction=32
    batch_finetune=32
    pretrained_flag=()
    num_workers=4
    smoke_batch_caps=()
    generate_limit=()
else
    image_size=64
    epochs_feature_extraction=2
    epochs_finetune=2
    batch_feature_extraction=8
    batch_finetune=8
    pretrained_flag=(--no-pretrained)
    num_workers=0
    smoke_images_per_class=4
    # At most this many training and validation batches per epoch, so a real dataset given with
    # --data-dir costs no more than the generated one.
    smoke_batch_caps=(--max-train-batches 3 --max-eval-batches 3)
    # A random model never emits an end token, so every sample runs to this limit.
    # float32, because bf16 on a CPU is slow for a model this small (the real tokenizer's
    # 151,669 ids make the output layer the largest part of it).
    generate_limit=(--max-new-tokens 24 --dtype float32)
fi

export RUN_PROFILE="$profile"
export MPLBACKEND=Agg
if [ "$offline" -eq 1 ] || [ "$profile" = smoke ]; then
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
fi

# step runner

step_names=()
step_results=()
step_seconds=()

record_step() {
    step_names+=("$1")
    step_results+=("$2")
    step_seconds+=("$3")
}

# Print a fingerprint (size and modification time) of files, so a step reruns when its inputs change.
fingerprint() {
    local path
    for path in "$@"; do
        if [ -e "$path" ]; then stat -c '%n:%s:%Y' "$path"; else echo "$path:missing"; fi
    done | sha256sum | cut -c1-16
}

step_is_complete() {
    local marker="$1" signature="$2" output
    shift 2
    [ -f "$marker" ] && [ "$(cat "$marker")" = "$signature" ] || return 1
    for output in "$@"; do
        [ -s "$output" ] || return 1
    done
}

# run_step NAME SIGNATURE OUTPUT... -- COMMAND...
# Skip NAME when its marker contains SIGNATURE and every OUTPUT exists. Otherwise run COMMAND with
# its output in evaluation/logs/NAME.log and time it. A failure stops the whole run.
run_step() {
    local name="$1" signature="profile=$profile $2"
    shift 2
    local outputs=()
    while [ "$1" != "--" ]; do
        outputs+=("$1")
        shift
    done
    shift

    local log="$logs_dir/$name.log" marker="$logs_dir/$name.done"
    mkdir -p "$logs_dir"
    if [ "$force" -eq 0 ] && step_is_complete "$marker" "$signature" "${outputs[@]}"; then
        echo "step $name: outputs complete, skipped (--force redoes it)"
        record_step "$name" skipped 0
        return 0
    fi

    rm -f "$marker"
    echo "step $name: running, log in $log"
    local start status
    start=$(date +%s)
    {
        echo "# step $name, profile $profile, started $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
        echo "# command: $*"
    } >"$log"
    # The step runs in a subshell with errexit on, so its first failing command ends it.
    set +e
    if [ "$quiet" -eq 1 ]; then
        (set -e; "$@") >>"$log" 2>&1
        status=$?
    else
        (set -e; "$@") 2>&1 | tee -a "$log"
        status=${PIPESTATUS[0]}
    fi
    set -e
    local seconds=$(( $(date +%s) - start ))

    for output in "${outputs[@]}"; do
        if [ "$status" -eq 0 ] && [ ! -s "$output" ]; then
            echo "error: step $name finished but did not write $output" | tee -a "$log" >&2
            status=1
        fi
    done
    if [ "$status" -ne 0 ]; then
        record_step "$name" "FAILED" "$seconds"
        echo "error: step $name failed (exit $status) after ${seconds} s; last lines of $log:" >&2
        tail -n 15 "$log" | sed 's/^/    /' >&2
        print_summary
        echo "error: run stopped at step $name; fix the problem and rerun (complete steps are skipped)" >&2
        exit 1
    fi
    echo "$signature" >"$marker"
    record_step "$name" ran "$seconds"
    echo "step $name: done in ${seconds} s"
}

print_summary() {
    local i
    echo
    echo "summary (profile $profile)"
    # 42 characters fit the longest step name, part1_evaluate_resnet50_feature_extraction.
    printf '  %-42s %-8s %8s\n' step result seconds
    for i in "${!step_names[@]}"; do
        printf '  %-42s %-8s %8s\n' "${step_names[$i]}" "${step_results[$i]}" "${step_seconds[$i]}"
    done
    {
        echo "# run_all.sh summary, profile $profile, $(date -u '+%Y-%m-%dT%H:%M:%SZ'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        for i in "${!step_names[@]}"; do
            printf '%s\t%s\t%s\n' "${step_names[$i]}" "${step_results[$i]}" "${step_seconds[$i]}"
        done
    } >"$logs_dir/summary.tsv" 2>/dev/null || true
}

module_exists() {
    "$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" 2>/dev/null
}

# profile bookkeeping

# evaluation/ contains one profile at a time. Smoke results are disposable and a full run replaces
# them; a smoke run never overwrites full results unless --force is given. The check runs before
# anything else, and the old results are removed only once this run's inputs are in place, so a
# run that fails at its first step leaves them as they were.
check_evaluation_dir() {
    previous_profile=""
    [ -f "$logs_dir/profile" ] && previous_profile="$(cat "$logs_dir/profile")"
    [ -n "$previous_profile" ] && [ "$previous_profile" != "$profile" ] || return 0
    if [ "$only" = report ]; then
        local flag=""
        [ "$previous_profile" = smoke ] && flag="--smoke "
        echo "error: $eval_dir/ contains $previous_profile-profile results, and --only report rebuilds the report from them." >&2
        echo "       Run 'bash run_all.sh ${flag}--only report' instead." >&2
        exit 1
    fi
    if [ "$previous_profile" = full ] && [ "$force" -eq 0 ]; then
        echo "error: $eval_dir/ contains results of the full profile, which a smoke run would replace." >&2
        echo "       Copy $eval_dir/ somewhere safe, then rerun with --force." >&2
        exit 1
    fi
}

# Remove the other profile's results; keep README.md and the logs this run has written so far.
replace_previous_results() {
    if [ -n "$previous_profile" ] && [ "$previous_profile" != "$profile" ]; then
        echo "note: removing the $previous_profile-profile results from $eval_dir/ before this $profile run"
        find "$eval_dir" -mindepth 1 -maxdepth 1 ! -name README.md ! -name logs -exec rm -rf {} +
        find "$logs_dir" -type f ! -newer "$run_started_marker" ! -path "$run_started_marker" -delete
        rm -rf latex/generated latex/build latex/report.pdf
    fi
    echo "$profile" >"$logs_dir/profile"
}

# Print where the full profile will run and, without a GPU, a rough time estimate.
announce_device() {
    [ "$profile" = full ] && [ "$only" != report ] || return 0
    local device
    device="$("$python" -c 'import torch
if torch.cuda.is_available():
    print("cuda " + torch.cuda.get_device_name(0))
elif torch.backends.mps.is_available():
    print("mps")
else:
    print("cpu")')"
    echo "device: $device"
    if [ "$device" = cpu ]; then
        # NOTE: an estimate, not a measurement of the full run. The smoke profile trained at about
        # 3 images/s at 64 px on 2 shared CPU cores. Scaled by the pixel count, 224 px gives about
        # 0.25 training images/s per core, and inference runs about 3 times faster.
        local train_images=3312 test_images=3669 cores
        cores="$(nproc 2>/dev/null || echo 2)"
        local finetune_seconds=$(( 2 * epochs_finetune * train_images * 4 / cores ))
        local probe_seconds=$(( 2 * epochs_feature_extraction * train_images * 4 / (3 * cores) ))
        local eval_seconds=$(( 4 * test_images * 4 / (3 * cores) ))
        local hours=$(( (finetune_seconds + probe_seconds + eval_seconds) / 3600 + 1 ))
        echo "warning: no CUDA or MPS GPU found; the full profile runs on $cores CPU cores." >&2
        echo "warning: estimated time for Part 1 alone: about $hours hours. Use --smoke for a check in minutes." >&2
    fi
}

# steps: one function per step

step_setup() { bash tools/setup_env.sh; }

step_pets() {
    local download=()
    # A directory given with --data-dir is only checked, except by --download-only, which fills it.
    if [ "$offline" -eq 0 ] && { [ -z "$user_data_dir" ] || [ "$download_only" -eq 1 ]; }; then
        download=(--download)
    fi
    "$python" -m tools.fetch_assets pets --data-dir "$data_dir" "${download[@]}"
}

step_synthetic_pets() {
    rm -rf "$data_dir"
    "$python" -m part1.make_synthetic_dataset --output-dir "$data_dir" \
        --images-per-class "$smoke_images_per_class" --seed 0
    "$python" -m tools.fetch_assets pets --data-dir "$data_dir"
}

step_timm_weights() {
    local offline_flag=()
    [ "$offline" -eq 0 ] || offline_flag=(--offline)
    "$python" -m tools.fetch_assets timm-weights "${offline_flag[@]}"
}

# Write the local Qwen3-0.6B directory, which part2.download prints on its last line (it downloads
# what is missing, or with --offline only looks in the cache), to $runs_dir/model_dir.txt.
step_locate_qwen() {
    local found
    mkdir -p "$runs_dir"
    local offline_flag=()
    [ "$offline" -eq 0 ] || offline_flag=(--offline)
    "$python" -m part2.download --repo-id Qwen/Qwen3-0.6B "${offline_flag[@]}" | tee "$runs_dir/download.out"
    found="$(grep -v '^[[:space:]]*$' "$runs_dir/download.out" | tail -n 1)"
    if [ ! -f "$found/config.json" ]; then
        echo "error: no config.json in '$found', so it is not a Qwen3 checkpoint directory" >&2
        return 1
    fi
    echo "$found" >"$runs_dir/model_dir.txt"
    echo "model directory: $found"
}

step_train() {
    local model="$1" mode="$2" run_dir="$3" epochs="$4" batch="$5"
    local resume=()
    [ "$force" -eq 1 ] && rm -rf "$run_dir"
    [ -f "$run_dir/last.pth" ] && resume=(--resume)
    "$python" -m part1.train --data-dir "$data_dir" --output-dir "$run_dir" --model "$model" \
        --mode "$mode" --epochs "$epochs" --batch-size "$batch" --image-size "$image_size" \
        --seed 0 --num-workers "$num_workers" --quiet "${pretrained_flag[@]}" \
        "${smoke_batch_caps[@]}" "${resume[@]}"
}

step_evaluate() {
    "$python" -m part1.evaluate --run-dir "$1" --data-dir "$data_dir" --output-dir "$2" \
        --num-workers "$num_workers" --quiet
}

step_compare() { "$python" -m part1.compare --eval-dir "$eval_dir/part1"; }

step_part1_benchmark() {
    local quick=()
    [ "$profile" = full ] || quick=(--quick)
    "$python" -m part1.benchmark --output "$eval_dir/part1/benchmark.json" --data-dir "$data_dir" "${quick[@]}"
}

step_smoke_tokenizer() {
    rm -rf "$tokenizer_dir"
    "$python" -m part2.smoke_tokenizer --output-dir "$tokenizer_dir"
}

step_tiny_checkpoint() {
    local vocab_size
    vocab_size="$("$python" -m tools.fetch_assets vocab-size --tokenizer-dir "$tokenizer_dir")"
    echo "tokenizer size: $vocab_size ids"
    rm -rf "$model_dir"
    "$python" -m part2.make_tiny_checkpoint --output-dir "$model_dir" --vocab-size "$vocab_size" --seed 0
}

step_parity() {
    local quick=()
    [ "$profile" = full ] || quick=(--quick)
    "$python" -m part2.verify_parity --output "$eval_dir/part2/parity.json" --model-dir "$model_dir" "${quick[@]}"
}

step_generate() {
    "$python" -m part2.generate --model-dir "$model_dir" --tokenizer-dir "$tokenizer_dir" \
        --write-samples "$eval_dir/part2" "${generate_limit[@]}"
}

step_part2_benchmark() {
    local quick=()
    [ "$profile" = full ] || quick=(--quick)
    "$python" -m part2.benchmark --output "$eval_dir/part2/benchmark.json" "${quick[@]}"
}

step_tokenizer_lab() {
    "$python" -m part2.run_tokenizer_lab --output-dir "$eval_dir/part2" --tokenizer-dir "$tokenizer_dir"
}

step_report() {
    "$python" -m tools.make_report --eval-dir "$eval_dir" --output-dir latex/generated
}

step_pdf() {
    rm -rf latex/build
    (cd latex && latexmk -pdf -silent -interaction=nonstopmode -halt-on-error -outdir=build report.tex)
    cp latex/build/report.pdf latex/report.pdf
}

step_package() { "$python" -m tools.package_submission --output submission.zip; }

# stages

user_data_dir="$data_dir"

resolve_inputs() {
    if [ -z "$data_dir" ]; then
        if [ "$profile" = smoke ]; then data_dir="$PWD/data/smoke"; else data_dir="$PWD/data"; fi
    fi
    if [ "$profile" = smoke ]; then
        [ -n "$tokenizer_dir" ] || tokenizer_dir="$PWD/$smoke_dir/tokenizer"
        [ -n "$model_dir" ] || model_dir="$PWD/$smoke_dir/tiny-qwen3"
    fi
}

run_downloads() {
    if [ "$profile" = smoke ]; then
        if [ -n "$user_data_dir" ]; then
            run_step part1_data "$data_dir" -- step_pets
        else
            run_step part1_data "$data_dir images=$smoke_images_per_class" \
                "$data_dir/oxford-iiit-pet/annotations/trainval.txt" -- step_synthetic_pets
        fi
        return 0
    fi

    if [ "$only" = all ] || [ "$only" = part1 ]; then
        run_step part1_data "$data_dir offline=$offline" \
            "$data_dir/oxford-iiit-pet/annotations/test.txt" -- step_pets
        run_step part1_weights "offline=$offline" -- step_timm_weights
    fi
    if [ "$only" = all ] || [ "$only" = part2 ]; then
        if [ -z "$model_dir" ]; then
            run_step part2_model "offline=$offline" "$runs_dir/model_dir.txt" -- step_locate_qwen
            model_dir="$(cat "$runs_dir/model_dir.txt")"
        fi
        if [ -z "$tokenizer_dir" ]; then
            if [ -f part2/tokenizer/tokenizer_config.json ]; then
                tokenizer_dir="$PWD/part2/tokenizer"
            else
                tokenizer_dir="$model_dir"
            fi
        fi
    fi
}

run_part1() {
    local model mode run epochs batch
    for model in "${part1_models[@]}"; do
        for mode in "${part1_modes[@]}"; do
            run="${model}_${mode}"
            if [ "$mode" = finetune ]; then
                epochs=$epochs_finetune; batch=$batch_finetune
            else
                epochs=$epochs_feature_extraction; batch=$batch_feature_extraction
            fi
            run_step "part1_train_$run" "$data_dir e=$epochs b=$batch s=$image_size" \
                "$runs_dir/part1/$run/metrics.json" "$runs_dir/part1/$run/best.pth" -- \
                step_train "$model" "$mode" "$runs_dir/part1/$run" "$epochs" "$batch"
            run_step "part1_evaluate_$run" \
                "$data_dir $(fingerprint "$runs_dir/part1/$run/best.pth")" \
                "$eval_dir/part1/$run/metrics.json" "$eval_dir/part1/$run/confusion_matrix.png" -- \
                step_evaluate "$runs_dir/part1/$run" "$eval_dir/part1/$run"
        done
    done

    local all_metrics=()
    for model in "${part1_models[@]}"; do
        for mode in "${part1_modes[@]}"; do
            all_metrics+=("$eval_dir/part1/${model}_${mode}/metrics.json")
        done
    done
    run_step part1_compare "$(fingerprint "${all_metrics[@]}")" \
        "$eval_dir/part1/summary.csv" "$eval_dir/part1/summary.md" -- step_compare

    if module_exists part1.benchmark; then
        run_step part1_benchmark "$data_dir" "$eval_dir/part1/benchmark.json" -- step_part1_benchmark
    else
        echo "note: part1.benchmark does not exist; skipping the Part 1 benchmark"
        record_step part1_benchmark "absent" 0
    fi
}

run_part2() {
    mkdir -p "$eval_dir/part2"
    if [ "$profile" = smoke ]; then
        if [ "$tokenizer_dir" = "$PWD/$smoke_dir/tokenizer" ]; then
            run_step part2_tokenizer "smoke-bpe" "$tokenizer_dir/tokenizer_config.json" -- \
                step_smoke_tokenizer
        fi
        if [ "$model_dir" = "$PWD/$smoke_dir/tiny-qwen3" ]; then
            run_step part2_model "$tokenizer_dir" "$model_dir/config.json" -- step_tiny_checkpoint
        fi
    fi

    run_step part2_parity "$model_dir" "$eval_dir/part2/parity.json" -- step_parity
    run_step part2_generate "$model_dir $tokenizer_dir" \
        "$eval_dir/part2/generation_samples.md" "$eval_dir/part2/chat_transcript.md" -- step_generate
    run_step part2_benchmark "benchmark" "$eval_dir/part2/benchmark.json" -- step_part2_benchmark
    run_step part2_tokenizer_lab "$tokenizer_dir id=${STUDENT_ID:-} $(fingerprint student.toml)" \
        "$eval_dir/part2/id_analysis.json" -- step_tokenizer_lab
}

run_report() {
    local inputs
    inputs="$(find "$eval_dir" -path "$eval_dir/logs" -prune -o -type f -print | sort)"
    # shellcheck disable=SC2086
    run_step report "$(fingerprint $inputs latex/report.tex tools/make_report.py tools/report_*.py part2/roclm_model.py student.toml) student=${STUDENT_ID:-}/${STUDENT_NAME:-}/${COLLABORATORS:-}/${AI_TOOLS:-}" \
        latex/generated/macros.tex -- step_report

    if command -v latexmk >/dev/null 2>&1 && command -v pdflatex >/dev/null 2>&1; then
        run_step pdf "$(fingerprint latex/report.tex latex/generated/*.tex)" latex/report.pdf -- step_pdf
    else
        # Name --smoke in the hint, because a full-profile rerun would first remove smoke results.
        local rerun="bash run_all.sh --only report"
        if [ "$profile" = smoke ]; then
            rerun="bash run_all.sh --smoke --only report"
        fi
        echo "note: pdflatex or latexmk not found, so the PDF is skipped; install TeX with"
        echo "      'bash tools/install_latex.sh' and rerun '$rerun'"
        record_step pdf "no TeX" 0
    fi
}

# List the results, split by whether this run wrote them or kept them from an earlier run
# (a skipped step keeps its outputs, so their age shows which steps ran).
print_written_paths() {
    local results new_paths kept_paths path
    results=$(find "$eval_dir" -type f ! -path "$logs_dir/*" ! -name README.md | sort)
    for path in latex/report.pdf submission.zip; do
        [ -f "$path" ] && results+=$'\n'"$path"
    done
    new_paths=""
    kept_paths=""
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        if [ "$path" -nt "$run_started_marker" ]; then
            new_paths+="  $path"$'\n'
        else
            kept_paths+="  $path"$'\n'
        fi
    done <<< "$results"
    echo
    echo "written by this run:"
    if [ -n "$new_paths" ]; then
        printf '%s' "$new_paths"
    else
        echo "  (no result files)"
    fi
    echo "  $logs_dir/ (one log per step)"
    [ -d latex/generated ] && echo "  latex/generated/ (macros, tables and figures for the report)"
    if [ -n "$kept_paths" ]; then
        echo "kept from earlier runs (--force reruns their steps):"
        printf '%s' "$kept_paths"
    fi
    return 0
}

# main

# Setup always runs: tools/setup_env.sh itself returns at once when .venv is up to date.
run_setup() {
    mkdir -p "$logs_dir"
    local saved_force="$force"
    force=1
    run_step setup "" -- step_setup
    force="$saved_force"
}

if [ "$package_only" -eq 1 ]; then
    run_setup
    force=1
    run_step package "" submission.zip -- step_package
    echo "wrote submission.zip"
    exit 0
fi

resolve_inputs

if [ "$download_only" -eq 1 ]; then
    run_setup
    run_downloads
    print_summary
    echo "downloads complete; copy data/, the Hugging Face cache (~/.cache/huggingface) and"
    echo "part2/tokenizer/ to the offline machine, then run 'bash run_all.sh --offline ...'"
    exit 0
fi

check_evaluation_dir
mkdir -p "$logs_dir"
run_started_marker="$logs_dir/.run_started"
touch "$run_started_marker"
run_setup
announce_device
echo "profile: $profile; data: $data_dir${model_dir:+; model: $model_dir}${tokenizer_dir:+; tokenizer: $tokenizer_dir}"

if [ "$only" != report ]; then
    run_downloads
fi
replace_previous_results
if [ "$only" = all ] || [ "$only" = part1 ]; then
    run_part1
fi
if [ "$only" = all ] || [ "$only" = part2 ]; then
    run_part2
fi
run_report

print_summary
print_written_paths
