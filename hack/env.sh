# Source this file (bash or zsh) to work with the local fleet from any shell:
#
#   source hack/env.sh
#
# It puts the pinned Kubernetes binaries (kubectl, helm, ... of the versions in hack/tools,
# `python -m hack.fleet bin-dir`) and .venv/bin (aifactoryctl, python) first on PATH, and sets
# KUBECONFIG to the local fleet's hub: $AIFACTORY_FLEET_ROOT/hub.kubeconfig (default .fleet/,
# where `make demo` and `make fleet-up` write it). Sourcing it again is harmless. Needs `make
# venv` (or `make demo`) once; the fleet itself may start later.

if [ -n "${BASH_VERSION:-}" ]; then
  _aifactory_src="${BASH_SOURCE[0]}"
  if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "hack/env.sh sets variables in your shell: source it, do not run it: source hack/env.sh" >&2
    exit 1
  fi
elif [ -n "${ZSH_VERSION:-}" ]; then
  eval '_aifactory_src="${(%):-%x}"'
else
  _aifactory_src="${0}"
fi

_aifactory_root="$(cd "$(dirname "${_aifactory_src}")/.." && pwd)"

_aifactory_env() {
  local root="$1" fleet_root bin_dir
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "hack/env.sh: $root/.venv is missing; run \`make venv\` (or \`make demo\`) first" >&2
    return 1
  fi
  bin_dir="$(cd "$root" && .venv/bin/python -m hack.fleet bin-dir)" || return 1
  fleet_root="${AIFACTORY_FLEET_ROOT:-$root/.fleet}"
  case "$fleet_root" in
    /*) ;;
    *) fleet_root="$root/$fleet_root" ;;
  esac
  # prepend, dropping earlier copies so that sourcing twice keeps PATH short
  local dir new_path=":$PATH:"
  for dir in "$root/.venv/bin" "$bin_dir"; do
    while case "$new_path" in *":$dir:"*) true ;; *) false ;; esac; do
      new_path="${new_path%%:"$dir":*}:${new_path#*:"$dir":}"
    done
    new_path=":$dir${new_path}"
  done
  new_path="${new_path#:}"
  PATH="${new_path%:}"
  export PATH
  export KUBECONFIG="$fleet_root/hub.kubeconfig"
  if [ ! -f "$KUBECONFIG" ]; then
    echo "hack/env.sh: KUBECONFIG=$KUBECONFIG (no fleet there yet: \`make demo\` starts one)" >&2
  fi
  if [ ! -x "$bin_dir/kubectl" ]; then
    echo "hack/env.sh: $bin_dir has no kubectl yet; \`make tools\` builds the pinned binaries" >&2
  fi
}

_aifactory_env "${_aifactory_root}"
_aifactory_status=$?
unset -f _aifactory_env
unset _aifactory_src _aifactory_root
# shellcheck disable=SC2317  # return when sourced
return "${_aifactory_status}" 2>/dev/null || true
