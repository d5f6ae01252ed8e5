#!/bin/sh
# Helpers for the dom0 side of the e2e scenarios (busybox sh).

# STAND-IN for the XenBus handshake xvdm does not do yet (issue 5): libxl
# 4.17 waits ~10 s for a virtio disk's backend to reach state 2
# (InitWait), else `xl create` fails, and on destroy it sets 5 (Closing)
# and waits for 6 (Closed). Until xvdm's xenstore support lands, answer
# both here. Runs in the background until killed.
e2e_standin_backend_handshake() {
    base=/local/domain/0/backend/virtio_disk
    while :; do
        for dom in $(xenstore-list "$base" 2>/dev/null); do
            for dev in $(xenstore-list "$base/$dom" 2>/dev/null); do
                path=$base/$dom/$dev/state
                case "$(xenstore-read "$path" 2>/dev/null)" in
                1) xenstore-write "$path" 2 ;;
                5) xenstore-write "$path" 6 ;;
                esac
            done
        done
        sleep 0.2
    done
}

# Wait until xvdm's log (foreground mode) says it is serving: the guest
# must not touch its windows before the ioreq server exists.
e2e_wait_serving() {
    for _ in $(seq "$2"); do
        grep -q "serving" "$1" 2>/dev/null && return 0
        kill -0 "$xvdm_pid" 2>/dev/null || break
        sleep 1
    done
    wait "$xvdm_pid"
    echo "e2e: xvdm is not serving (exit status $?); its log:"
    cat "$1"
    return 1
}

# Wait until guest NAME's console says GUEST DONE; 0 when it also said
# GUEST RESULT PASS.
e2e_wait_guest() {
    log=/var/log/xen/guest-$1.log
    for _ in $(seq "$2"); do
        grep -q "GUEST DONE" "$log" 2>/dev/null && break
        sleep 1
    done
    grep -q "GUEST RESULT PASS" "$log" 2>/dev/null
}

# Copy the guest's console and xvdm's log to dom0's console as they grow,
# so the serial log has them even if dom0 itself gets stuck.
e2e_follow_logs() {
    touch "/var/log/xen/guest-$1.log" "$2"
    tail -F "/var/log/xen/guest-$1.log" 2>/dev/null | sed 's/^/[guest] /' &
    tail -F "$2" 2>/dev/null | sed 's/^/[xvdm] /' &
}

e2e_stop_following() {
    sleep 1
    killall tail 2>/dev/null
}

# Run guest NAME from CONFIG with xvdm serving DEVICE... (--device specs,
# in the order of the guest's virtio disks): stand-in handshake,
# `xl create -p`, xvdm, wait until it serves, unpause, wait for the guest's
# verdict, stop xvdm with SIGTERM, destroy the guest. 0 when the guest
# passed and xvdm exited 0.
e2e_run_guest() {
    name=$1
    config=$2
    shift 2
    devices=""
    for spec in "$@"; do
        devices="$devices --device $spec"
    done
    log=/var/log/xvdm-$name.log
    e2e_standin_backend_handshake &
    handshake=$!
    if ! xl create -p "$config"; then
        kill "$handshake"
        return 1
    fi
    domid=$(xl domid "$name")
    e2e_follow_logs "$name" "$log"
    # shellcheck disable=SC2086 # the specs have no spaces
    xvdm --domid "$domid" $devices --foreground --log-level debug \
        >"$log" 2>&1 &
    xvdm_pid=$!
    e2e_wait_serving "$log" 120 || return 1
    xl unpause "$name"
    echo "e2e: guest $name running"
    e2e_wait_guest "$name" 240
    verdict=$?
    # xvdm lets go of the guest before it is destroyed: Xen on Arm cannot
    # finish destroying a domain whose memory a device model still maps
    # (hence on_poweroff = "preserve" in the guests' configs).
    kill -TERM "$xvdm_pid" 2>/dev/null
    wait "$xvdm_pid"
    xvdm_status=$?
    xl destroy "$name" 2>/dev/null
    kill "$handshake" 2>/dev/null
    e2e_stop_following
    echo "e2e: xvdm exited with status $xvdm_status"
    [ "$verdict" -eq 0 ] && [ "$xvdm_status" -eq 0 ]
}

# Scenarios share the loop devices: each lets go of them however it ends.
e2e_release_loop() {
    umount /mnt 2>/dev/null
    losetup -d /dev/loop0 2>/dev/null
    losetup -d /dev/loop1 2>/dev/null
}
