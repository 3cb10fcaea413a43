#!/usr/bin/env bash
# One-step set-up for tolk on Debian 12: installs the missing Debian packages, configures and builds into build/
# (Release). With --test it also installs what the test suite and the Python scripts need, runs the whole ctest
# suite, runs the numeric and golden tests again with oneDNN held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2), builds and
# runs the same suite under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/), and runs each fuzzer for
# a short while (tests/fuzz/run_fuzzers.sh, when present).
#   bash scripts/setup.sh            # install + build (translation only: no PyTorch)
#   bash scripts/setup.sh --test     # install + build + every test (what .ci/run does)
# TOLK_FUZZ_SECONDS (default 60) sets how long each fuzzer runs under --test; 0 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

run_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    *) echo "setup.sh: unknown option '$arg' (use --test)" >&2; exit 2 ;;
  esac
done

# Building and running tolk. ocl-icd-opencl-dev: Debian's libdnnl-dev only recommends it, but oneDNN's CMake
# package config requires OpenCL, so a --no-install-recommends machine fails to configure without it.
packages=(g++ cmake make pkg-config libdnnl-dev ocl-icd-opencl-dev libsentencepiece-dev libcli11-dev
          nlohmann-json3-dev libicu-dev)
if ((run_tests)); then
  # The doctest suite; the PyTorch reference model, training and data scripts and their tests (OpenBLAS: without
  # an optimised BLAS, Debian's python3-torch falls back to the reference libblas3 and trains about 30x slower);
  # the sentencepiece CLI for the scripts; GNU parallel for the sharding recipe's test; clang's libFuzzer and
  # sanitizer runtimes for the fuzzers.
  packages+=(doctest-dev python3-torch python3-numpy python3-sentencepiece libopenblas0-pthread sentencepiece
             parallel clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}" >&2
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

jobs=$(nproc)
# The plain set-up does not build the tests (doctest-dev is only installed with --test).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTOLK_BUILD_TESTS=$((run_tests ? 1 : 0)) >&2
cmake --build build -j "$jobs" >&2

if ((run_tests)); then
  ctest --test-dir build --output-on-failure -j "$jobs"
  # The same numbers on oneDNN's AVX2 kernels, so that a machine with AVX-512 also checks the path an AVX2-only
  # CPU takes (oneDNN 2.6 reads ONEDNN_MAX_CPU_ISA, values such as AVX2 or AVX512_CORE).
  ONEDNN_MAX_CPU_ISA=AVX2 ctest --test-dir build --output-on-failure -j "$jobs" -L isa
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOLK_SANITIZE=ON >&2
  cmake --build build-asan -j "$jobs" >&2
  # oneDNN's JIT and OpenMP runtime hold allocations for the process lifetime; leaks are not errors here.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
  if [ -f tests/fuzz/run_fuzzers.sh ] && [ "${TOLK_FUZZ_SECONDS:-60}" != 0 ]; then
    bash tests/fuzz/run_fuzzers.sh "${TOLK_FUZZ_SECONDS:-60}"
  fi
fi
