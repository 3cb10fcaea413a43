#!/usr/bin/env bash
# One-step set-up for tolk on Debian 12: installs the missing Debian packages, configures and builds
# into build/ (Release). With --test it also builds and runs the whole ctest suite, then the same
# suite under AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/.
#   bash scripts/setup.sh            # install + build
#   bash scripts/setup.sh --test     # install + build + all tests (what .ci/run does)
set -euo pipefail
cd "$(dirname "$0")/.."

run_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    *) echo "setup.sh: unknown option '$arg' (use --test)" >&2; exit 2 ;;
  esac
done

# libopenblas0-pthread: without an optimised BLAS, Debian's python3-torch falls back to the reference
# libblas3 and trains about 30x slower.
packages=(g++ cmake make pkg-config libdnnl-dev libsentencepiece-dev sentencepiece libcli11-dev
          nlohmann-json3-dev doctest-dev libicu-dev python3-torch python3-numpy python3-sentencepiece
          libopenblas0-pthread)
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
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >&2
cmake --build build -j "$jobs" >&2

if ((run_tests)); then
  ctest --test-dir build --output-on-failure -j "$jobs"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOLK_SANITIZE=ON >&2
  cmake --build build-asan -j "$jobs" >&2
  # oneDNN's JIT and OpenMP runtime hold allocations for the process lifetime; leaks are not errors here.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
