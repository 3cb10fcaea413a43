#!/usr/bin/env bash
# Runs a command in a brand-new minimal Debian 12 root, on a fresh clone of this repository, the way a new user's
# machine would run it: nothing installed but apt, so every package the command needs must come from the project's
# own set-up. .ci/run uses it so that a green CI run means a green new machine.
#
#   sudo bash scripts/clean_room.sh [options] [--] COMMAND...     (COMMAND runs with bash -c in /src/tolk)
#     --refresh       rebuild the cached root tarball before using it
#     --keep          keep the unpacked root afterwards (its path is printed)
#     --rev REV       clone this commit instead of HEAD (the clone is of committed work only)
#
# Environment: TOLK_CLEAN_ROOM_CACHE (default ~/.cache/tolk): where the root tarball is cached between runs;
# TOLK_DEBIAN_MIRROR (default http://deb.debian.org/debian) and TOLK_DEBIAN_SECURITY (default
# http://deb.debian.org/debian-security): the archives the root uses; TMPDIR: where the root is unpacked.
# Needs root (chroot and bind mounts), git, and Debian's mmdebstrap (installed with apt-get when missing).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

refresh=0 keep=0 rev=HEAD
while (($#)); do
  case "$1" in
    --refresh) refresh=1; shift ;;
    --keep) keep=1; shift ;;
    --rev) rev="${2:?--rev needs a commit}"; shift 2 ;;
    --) shift; break ;;
    -*) echo "clean_room.sh: unknown option '$1'" >&2; exit 2 ;;
    *) break ;;
  esac
done
if (($# == 0)); then
  echo "clean_room.sh: usage: clean_room.sh [--refresh] [--keep] [--rev REV] [--] COMMAND..." >&2
  exit 2
fi
command_line="$*"
if [ "$(id -u)" -ne 0 ]; then
  echo "clean_room.sh: needs root for chroot and bind mounts (run it with sudo)" >&2
  exit 2
fi

cache="${TOLK_CLEAN_ROOM_CACHE:-${HOME:-/root}/.cache/tolk}"
mirror="${TOLK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${TOLK_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
tarball="$cache/debian12-apt-root.tar"
start=$SECONDS
say() { printf 'clean_room.sh: [%4ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >&2
fi

# 1. The root: Debian 12 "apt" variant (essential packages + apt, nothing else), cached as a tarball.
if ((refresh)) || [ ! -f "$tarball" ] || [ ! -s "$tarball" ]; then
  # A cache entry that is not a plain file (a directory left by an older version of this script) is rebuilt.
  rm -rf "$tarball" "$tarball.part"
  mkdir -p "$cache"
  say "building a minimal Debian 12 root (mmdebstrap --variant=apt) into $tarball"
  # The output format is named: mmdebstrap guesses it from the file name, and "*.part" would make a directory.
  # Snapshot-style mirrors serve Release files past their Valid-Until date; do not reject them.
  mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' --format=tar bookworm "$tarball.part" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" >&2
  mv "$tarball.part" "$tarball"
fi

# 2. Unpack it and clone the repository into it.
root="$(mktemp -d "${TMPDIR:-/var/tmp}/tolk-clean-root.XXXXXX")"
mounted=()
cleanup() {
  local status=$?
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m="${mounted[i]}"
    umount -R "$m" 2>/dev/null || umount -lR "$m" 2>/dev/null || true
  done
  if ((keep)); then
    say "kept the root at $root"
  elif [ -d "$root" ]; then
    # Never follow a mount that is still there into the host's /dev or /sys.
    if grep -q " $root/" /proc/mounts; then
      say "not removing $root: something is still mounted under it"
    else
      rm -rf --one-file-system "$root"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "unpacking the root into $root"
tar -C "$root" -xf "$tarball"
commit="$(git -C "$repo" rev-parse --verify "$rev^{commit}")"
git clone -q --no-local "$repo" "$root/src/tolk"
git -C "$root/src/tolk" checkout -q "$commit"
say "cloned $(git -C "$repo" log -1 --format='%h %s' "$commit")"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

# 3. /proc, /sys and /dev from the host; rslave so that unmounting inside never reaches the host's mounts.
mount -t proc proc "$root/proc"; mounted+=("$root/proc")
for d in sys dev; do
  mount --rbind "/$d" "$root/$d"
  mount --make-rslave "$root/$d"
  mounted+=("$root/$d")
done

# 4. The command, as root in the new system, with a clean environment.
say "running: $command_line"
set +e
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  ${ONEDNN_MAX_CPU_ISA:+ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA} \
  /bin/bash -c "cd /src/tolk && $command_line"
status=$?
set -e
say "command exited with status $status"
exit "$status"
