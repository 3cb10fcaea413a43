#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each for SECONDS (default 60).
# Usage: tests/fuzz/run_fuzzers.sh [SECONDS] [FUZZER...]   (fuzzers: safetensors config vocab lines)
# Seeds: tests/fuzz/seeds/<name>/ plus the fixtures in tests/data; the growing corpus lives in
# build-fuzz/corpus/<name>/ and crashes in build-fuzz/crashes/. Exits non-zero when a fuzzer finds a crash.
# Environment: TOLK_FUZZ_BUILD (build dir), TOLK_FUZZ_JOBS (build parallelism), TOLK_FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail

seconds=${1:-60}
shift || true
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(safetensors config vocab lines)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${TOLK_FUZZ_BUILD:-$root/build-fuzz}
data=$root/tests/data

command -v clang++ > /dev/null || { echo "run_fuzzers.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DTOLK_FUZZ=ON -DTOLK_SANITIZE=ON -DTOLK_BUILD_TESTS=OFF > "$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 2; }
fi
targets=()
for f in "${fuzzers[@]}"; do targets+=("fuzz_$f"); done
cmake --build "$build" -j"${TOLK_FUZZ_JOBS:-$(nproc)}" --target "${targets[@]}"

# Seed corpora: the committed seeds plus the fixtures (safetensors: the header and the first 4 KB of data).
for f in "${fuzzers[@]}"; do
  corpus=$build/corpus/$f
  mkdir -p "$corpus" "$build/crashes/$f"
  cp -n "$root/tests/fuzz/seeds/$f/"* "$corpus/" 2> /dev/null || true
  for model in "$data"/*/; do
    name=$(basename "$model")
    case $f in
      safetensors)
        len=$(od -An -t u8 -N 8 "$model/model.safetensors" | tr -d ' ')
        head -c $((8 + len + 4096)) "$model/model.safetensors" > "$corpus/fixture-$name" ;;
      config)
        for j in config generation_config tokenizer_config; do cp "$model/$j.json" "$corpus/fixture-$name-$j"; done ;;
      vocab)
        for j in vocab target_vocab; do [ -f "$model/$j.json" ] && cp "$model/$j.json" "$corpus/fixture-$name-$j"; done ;;
      lines)
        [ -f "$model/golden.json" ] && head -c 8192 "$model/golden.json" > "$corpus/fixture-$name-golden" ;;
    esac
  done
done

declare -A max_len=([safetensors]=65536 [config]=16384 [vocab]=65536 [lines]=8192)
status=0
total=0
for f in "${fuzzers[@]}"; do
  log=$build/fuzz_$f.log
  echo "== fuzz_$f: ${seconds}s"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: bounded memory is part of the contract.
  if ! "$build/fuzz_$f" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$f]}" \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$f/" ${TOLK_FUZZ_ARGS:-} \
      "$build/corpus/$f" > "$log" 2>&1; then
    status=1
    echo "fuzz_$f FAILED (see $log and $build/crashes/$f/):" >&2
    grep -E "ERROR|SUMMARY|Test unit written|No such file" "$log" | head -20 >&2 || true
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  echo "fuzz_$f: ${runs:-?} executions, corpus $(ls "$build/corpus/$f" | wc -l) inputs"
  total=$((total + ${runs:-0}))
done
echo "total: $total executions"
exit $status
