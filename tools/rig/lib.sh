# shellcheck shell=bash
# Shared by the rig's scripts: which rig (Xen 4.17 or 4.20), where things
# are cached, and small helpers. Sourced, not run. A script sourcing it
# takes `--xen 4.17|4.20` as its first arguments (or XVDM_RIG_XEN; 4.17 by
# default) and passes the choice on to the scripts it runs.

# The variables are used by the scripts that source this file.
# shellcheck disable=SC2034
rig_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034
rig_cache=${XVDM_RIG_CACHE:-/var/cache/xvdm-rig}

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

# Where the Xen 4.20 hypervisor's source is by default: the project's shared
# directory beside the checkout (or beside the main checkout of a
# worktree), else /work/shared.
rig_default_tarball() {
    local common dir
    common=$(git -C "$rig_top" rev-parse --path-format=absolute \
        --git-common-dir 2>/dev/null) || common=$rig_top/.git
    for dir in "$rig_top/.." "$(dirname "$common")/.." /work; do
        if [ -f "$dir/shared/xen/xen-4.20.4-hv.tar.xz" ]; then
            echo "$dir/shared/xen/xen-4.20.4-hv.tar.xz"
            return 0
        fi
    done
    echo "$rig_top/../shared/xen/xen-4.20.4-hv.tar.xz"
}

# The guests' fio (tools/rig/build-fio), from Debian 12's source package on
# both rigs: one version of the tool behind both rigs' figures.
# shellcheck disable=SC2034
rig_fio_version=3.33-3

rig_xen=${XVDM_RIG_XEN:-4.17}
if [ "${1:-}" = --xen ]; then
    rig_xen=${2:?--xen takes 4.17 or 4.20}
    shift 2
fi
export XVDM_RIG_XEN=$rig_xen
# shellcheck disable=SC2034
case "$rig_xen" in
4.17)
    # Debian 12: its kernel for dom0 and guests, its Xen tools, and the
    # hypervisor from the source Debian 12 can still serve (the security
    # update's source is not downloadable from the archive mirror).
    rig_suite=bookworm
    rig_debs=$rig_cache/debs
    rig_xen_version=4.17.5+72-g01140da4e8-1
    rig_kernel_pkg=linux-image-6.1.0-56-arm64
    rig_arm64=$rig_top/build/arm64
    rig_out=${XVDM_RIG_OUT:-$rig_top/build/rig}
    rig_xen_args=
    # The gpu scenario's: the gpu's vnc= (libvncserver) and vnc-screenshot
    # (libvncclient, libpng) in dom0, as tools/build-arm64 builds them
    # against Debian 12, and what those libraries link against.
    rig_vnc_debs=(libvncserver1 libvncclient1 libpng16-16 libsasl2-2
        libsasl2-modules-db libdb5.3 libgcrypt20 libgpg-error0 libgnutls30
        libgmp10 libhogweed6 libnettle8 libidn2-0 libunistring2 libp11-kit0
        libffi8 libtasn1-6 libjpeg62-turbo liblzo2-2 libssl3)
    ;;
4.20)
    # Debian 13's userland and Xen tools, the hypervisor from the upstream
    # release's source (Debian 13's lacks the ioreq server, and its source
    # package does not download), and a Linux 6.12 the project configures
    # (tools/rig/build-linux), from Debian 13's linux-source package.
    rig_suite=trixie
    rig_debs=$rig_cache/debs-trixie
    rig_xen_tarball=${XVDM_RIG_XEN_TARBALL:-$(rig_default_tarball)}
    rig_linux_pkg=linux-source-6.12
    rig_arm64=$rig_top/build/arm64-trixie
    rig_out=${XVDM_RIG_OUT:-$rig_top/build/rig-4.20}
    # Xen on Arm defaults to XSM's SILO mode, which forbids grants and
    # event channels between two domUs: the driver-domain scenario needs
    # the policy of Xen without XSM (the README's "Driver domains").
    rig_xen_args=xsm=dummy
    # The gpu scenario's: the gpu's vnc= (libvncserver) and vnc-screenshot
    # (libvncclient, libpng) in dom0, as tools/build-arm64 builds them
    # against Debian 13, and what those libraries link against.
    rig_vnc_debs=(libvncserver1 libvncclient1 libpng16-16t64 libsasl2-2
        libsasl2-modules-db libdb5.3t64 libgcrypt20 libgpg-error0
        libgnutls30t64 libgmp10 libhogweed6t64 libnettle8t64 libidn2-0
        libunistring5 libp11-kit0 libffi8 libtasn1-6 libjpeg62-turbo
        liblzo2-2 libssl3t64)
    # The nbd scenario's: libnbd (blk,nbd=) and qemu-utils (qemu-nbd,
    # qemu-img) in dom0, and what they link against beside the libraries
    # above (GnuTLS, Nettle, GMP) and the rig's own (liburing, zstd, zlib).
    rig_nbd_debs=(libnbd0 libxml2 qemu-utils libaio1t64 libfuse3-4
        libglib2.0-0t64 libatomic1 libpcre2-8-0 libselinux1 libnuma1)
    ;;
*)
    rig_die "Xen '$rig_xen': the rig runs Xen 4.17 or 4.20"
    ;;
esac

# The one cached package named PKG (either architecture's file).
rig_deb() {
    local f
    f=$(compgen -G "$rig_debs/${1}_*.deb") ||
        rig_die "package $1 is not in $rig_debs: run tools/rig/fetch --xen $rig_xen"
    [ "$(wc -l <<<"$f")" -eq 1 ] ||
        rig_die "more than one $1 in $rig_debs: $(tr '\n' ' ' <<<"$f")"
    echo "$f"
}
