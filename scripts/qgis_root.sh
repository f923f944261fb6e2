#!/usr/bin/env bash
# The whole test suite on a newer QGIS LTR in a Debian 13 "trixie" root (Python 3.13, numpy 2), next to the
# host's 3.22. QGIS_ROOT picks the QGIS:
#   QGIS_ROOT=3.44 (default)  QGIS 3.44 LTR from trixie-backports (`apt-get install -t trixie-backports`)
#   QGIS_ROOT=3.40            QGIS 3.40 LTR, trixie's own
#
#   scripts/qgis_root.sh build    # build the cached root if it is missing or broken (idempotent)
#   scripts/qgis_root.sh test     # build if needed, then copy this tree in and run `make pytest` under Xvfb
#   scripts/qgis_root.sh shell    # a shell inside the root (mounts set up and removed as for test)
#   scripts/qgis_root.sh probe-pypi-torch   # does PyPI's cp313 torch import without nvidia-* packages?
#
# Why a root and not a container: CI and developers have Debian's packages and PyPI only, as root, and nothing
# else. debootstrap builds the root from Debian's own packages, so the QGIS tested is the one Debian 13 users get.
#
# Cache: $RSSGL_ROOT_CACHE (default ~/.cache/rssgl-qgis), outside the repository, one root per QGIS:
# qgis<QGIS_ROOT>-root is the root, qgis<QGIS_ROOT>-root/.rssgl-ready says it was completed for the current
# recipe (RECIPE below); a root without it, or one whose interpreter cannot import torch, QGIS and the test
# packages, is built again (finished steps are kept when debootstrap had completed). Delete the folder to force a
# cold build.
#
# torch: PyPI's Linux x86_64 torch for cp313 is the CUDA build; it does not import without its nvidia-* packages
# (several GB; `probe-pypi-torch` shows it, docs/QGIS_ROOTS.md). Debian 13 ships a CPU build, python3-torch, which
# is what a trixie user can apt-get; the root uses it. The other pinned test packages (requirements.txt minus
# torch and ruff) are downloaded by the host's pip for Python 3.13 and installed inside with --no-index: pip
# inside the root does not trust the host's certificate bundle.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
QGIS_ROOT=${QGIS_ROOT:-3.44}
SUITE=${DEBIAN_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${RSSGL_ROOT_CACHE:-$HOME/.cache/rssgl-qgis}
case "$QGIS_ROOT" in
  3.40) APT_RELEASE= ;;                      # trixie's own QGIS
  3.44) APT_RELEASE=$SUITE-backports ;;      # QGIS 3.44 is in trixie-backports only
  *) echo "QGIS_ROOT must be 3.40 or 3.44, not '$QGIS_ROOT'" >&2; exit 2 ;;
esac
ROOT=$CACHE/qgis$QGIS_ROOT-root
# The mirror's backports Release file can be past its Valid-Until date (seen 2026-12): apt would refuse it.
APT_OPTS=(-o Acquire::Check-Valid-Until=false)
HOST_PIP=${HOST_PIP:-$REPO/.venv/bin/python -m pip}
VENV_IN=/opt/rssgl-venv           # venv inside the root (--system-site-packages: Debian's qgis, gdal, numpy, torch)
WHEELS_IN=/opt/rssgl-wheels       # wheels downloaded by the host for the root's Python
PY_IN=3.13                        # trixie's python3
# Debian packages inside the root: what the issue's user installed, plus what the suite uses (scipy for
# io/uncertainty.py, CPU torch, lrelease/pylupdate5 for the i18n tests and `make transcompile`, make for the
# README commands).
# (--no-install-recommends gives torch and numpy the reference BLAS; libopenblas0-pthread would make a 1024x1024
# matmul 11x faster in the root, but the whole suite has not run with it yet: docs/QGIS_ROOTS.md.)
APT_IN="qgis python3-qgis qgis-providers python3-gdal python3-venv xvfb xauth python3-scipy python3-torch
  qttools5-dev-tools pyqt5-dev-tools make ca-certificates locales-all"
PIP_PINS=$(grep -vE '^\s*(#|$|torch\b|ruff\b)' "$REPO/requirements.txt")
RECIPE="$SUITE|$APT_RELEASE|$APT_IN|$PIP_PINS|$PY_IN|v1"

# One run at a time per cache (developers on one machine share ~/.cache): a second run waits here.
mkdir -p "$CACHE"
exec 9>"$CACHE/qgis$QGIS_ROOT-root.lock"
flock 9

MOUNTS=()
log() { printf '[qgis%s-root %(%H:%M:%S)T] %s\n' "$QGIS_ROOT" -1 "$*" >&2; }

unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || log "could not unmount ${MOUNTS[i]}"
  done
  MOUNTS=()
}
trap unmount_all EXIT
trap 'unmount_all; exit 130' INT TERM

mount_one() {  # mount_one TARGET mount-args...
  local target=$1; shift
  mountpoint -q "$target" && umount -l "$target"   # a stale mount from a killed run
  mkdir -p "$target"
  mount "$@" "$target"
  MOUNTS+=("$target")
}

clear_stale_mounts() {  # mounts left under the root by a run that was killed (SIGKILL skips the EXIT trap)
  local target
  awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r target; do
    log "removing a stale mount: $target"
    umount -l "$target" || true
  done
}

mount_root() {
  mount_one "$ROOT/proc" -t proc proc
  mount_one "$ROOT/sys" -t sysfs sysfs
  mount_one "$ROOT/dev" --bind /dev
  mount_one "$ROOT/dev/pts" --bind /dev/pts
  mount_one "$ROOT/dev/shm" -t tmpfs -o mode=1777 shm
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

in_root() {  # in_root COMMAND...: a clean environment, as a new user's login would have
  env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive CI="${CI:-}" RSSGL_QGIS_ROOT="$QGIS_ROOT" TERM=dumb chroot "$ROOT" "$@"
}

root_works() {
  [ -f "$ROOT/.rssgl-ready" ] && [ "$(cat "$ROOT/.rssgl-ready")" = "$RECIPE" ] || return 1
  in_root "$VENV_IN/bin/python" -c 'import torch, qgis.core, osgeo.gdal, scipy, safetensors, pytest, hypothesis' \
    >/dev/null 2>&1
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  log "installing debootstrap on the host"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
}

build_root() {
  if root_works; then log "root $ROOT is ready (cached)"; return; fi
  [ "$(id -u)" = 0 ] || { echo "building the root needs root (debootstrap, chroot, mount)" >&2; exit 1; }
  clear_stale_mounts
  ensure_debootstrap
  if [ ! -f "$ROOT/.debootstrap-done" ]; then
    log "debootstrap --variant=minbase $SUITE $ROOT $MIRROR"
    rm -rf --one-file-system "$ROOT"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
    touch "$ROOT/.debootstrap-done"
  fi
  mount_root
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
  local target=()
  if [ -n "$APT_RELEASE" ]; then
    echo "deb $MIRROR $APT_RELEASE main" >"$ROOT/etc/apt/sources.list.d/$APT_RELEASE.list"
    target=(-t "$APT_RELEASE")
  fi
  log "apt-get install ${target[*]} (inside): $(echo $APT_IN)"
  in_root apt-get "${APT_OPTS[@]}" update -qq
  # shellcheck disable=SC2086
  in_root apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${target[@]}" $APT_IN >/dev/null
  in_root apt-get clean
  log "venv $VENV_IN and pinned test packages"
  [ -x "$ROOT$VENV_IN/bin/python" ] || in_root python3 -m venv --system-site-packages "$VENV_IN"
  mkdir -p "$ROOT$WHEELS_IN"
  printf '%s\n' "$PIP_PINS" >"$ROOT$WHEELS_IN/requirements.txt"
  # shellcheck disable=SC2086
  # Every tag spelled out: pip 23 does not widen --platform to older manylinux tags or add abi3 by itself.
  $HOST_PIP download -q --only-binary=:all: --python-version "$PY_IN" --implementation cp \
    --abi "cp${PY_IN/./}" --abi abi3 --abi none --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$ROOT$WHEELS_IN" -r "$ROOT$WHEELS_IN/requirements.txt"
  in_root "$VENV_IN/bin/python" -m pip install -q --no-index --find-links "$WHEELS_IN" \
    -r "$WHEELS_IN/requirements.txt"
  # The root must hold the QGIS it is named for (Debian could move trixie-backports on to another release).
  in_root "$VENV_IN/bin/python" -c 'import torch, qgis.core, numpy, osgeo.gdal, sys
version = qgis.core.Qgis.QGIS_VERSION
print("root ready: QGIS", version, "| Python", sys.version.split()[0], "| numpy",
      numpy.__version__, "| GDAL", osgeo.gdal.__version__, "| torch", torch.__version__)
if not version.startswith(sys.argv[1] + "."):
    sys.exit(f"this root was to hold QGIS {sys.argv[1]}, but apt installed QGIS {version}: "
             "update the QGIS_ROOT choices in scripts/qgis_root.sh")' "$QGIS_ROOT"
  printf '%s' "$RECIPE" >"$ROOT/.rssgl-ready"
  unmount_all
}

copy_tree() {  # the working tree as git sees it (tracked + untracked, not ignored) into /src, with the root's venv
  rm -rf --one-file-system "$ROOT/src"
  mkdir -p "$ROOT/src"
  (cd "$REPO" && git ls-files -z -co --exclude-standard | grep -zv '^\.venv$' | tar --null -T - -cf -) |
    tar -C "$ROOT/src" -xf -
  ln -s "$VENV_IN" "$ROOT/src/.venv"
}

run_tests() {
  build_root
  clear_stale_mounts
  copy_tree
  mount_root
  log "make pytest inside the QGIS $QGIS_ROOT root"
  # `|| rc=$?`: the mounts are removed by the EXIT trap either way, and the suite's status is the script's.
  local rc=0
  in_root bash -c "cd /src && make transcompile && make pytest PYTEST_ARGS='${PYTEST_ARGS:-}'" || rc=$?
  return $rc
}

probe_pypi_torch() {  # why the root uses Debian's torch: PyPI's cp313 torch without its nvidia-* packages
  build_root
  local wheels=$ROOT/opt/probe-pypi-torch
  mkdir -p "$wheels"
  # shellcheck disable=SC2086
  $HOST_PIP download -q --no-deps --only-binary=:all: --python-version "$PY_IN" --implementation cp \
    --platform manylinux_2_28_x86_64 -d "$wheels" "torch==${PROBE_TORCH:-2.9.1}"
  mount_root
  local rc=0
  in_root bash -c "rm -rf /opt/probe-pypi-torch/venv && python3 -m venv --system-site-packages /opt/probe-pypi-torch/venv \
    && /opt/probe-pypi-torch/venv/bin/pip install -q --no-index --no-deps /opt/probe-pypi-torch/torch-*.whl \
    && /opt/probe-pypi-torch/venv/bin/python -c 'import torch; print(\"imports:\", torch.__version__)'" || rc=$?
  rm -rf --one-file-system "$wheels"
  return $rc
}

# All on one compound command that ends in exit: bash reads a script as it runs, so an edit made during a run
# (a git checkout) must not be read as further commands.
{
case "${1:-test}" in
  build) build_root ;;
  test) run_tests ;;
  shell) build_root; copy_tree; mount_root; in_root bash -c 'cd /src && exec bash -i' ;;
  probe-pypi-torch) probe_pypi_torch ;;
  *) echo "usage: $0 [build|test|shell|probe-pypi-torch]" >&2; exit 2 ;;
esac
exit
}
