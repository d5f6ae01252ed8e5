# shellcheck shell=bash
# Shared by the rig's scripts: where things are cached, and small helpers.
# Sourced, not run.

# The variables are used by the scripts that source this file.
# shellcheck disable=SC2034
rig_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034
rig_cache=${XVDM_RIG_CACHE:-/var/cache/xvdm-rig}
# shellcheck disable=SC2034
rig_out=${XVDM_RIG_OUT:-$rig_top/build/rig}
# The hypervisor source Debian 12 can still serve (the security update's
# source is not downloadable from the archive mirror).
# shellcheck disable=SC2034
rig_xen_version=4.17.5+72-g01140da4e8-1
# shellcheck disable=SC2034
rig_kernel_pkg=linux-image-6.1.0-56-arm64

rig_say() {
    echo "rig: $*"
}

rig_die() {
    echo "rig: error: $*" >&2
    exit 1
}

rig_sudo() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Seconds since the script started, for the timings the README quotes.
rig_elapsed() {
    echo "$SECONDS"
}
