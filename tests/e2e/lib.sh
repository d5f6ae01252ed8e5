#!/bin/sh
# Helpers for the dom0 side of the e2e scenarios (busybox sh).

# Wait until guest NAME's console says GUEST DONE; 0 when it also said
# GUEST RESULT PASS.
e2e_wait_guest() {
    guest_console=/var/log/xen/guest-$1.log
    for _ in $(seq "$2"); do
        grep -q "GUEST DONE" "$guest_console" 2>/dev/null && break
        sleep 1
    done
    grep -q "GUEST RESULT PASS" "$guest_console" 2>/dev/null
}

# Guest $1 gave no verdict within $2 seconds: what the serial log needs to
# tell a guest stuck in an access nobody answers (xvdm's slots, its
# counters, each vCPU's state in Xen) from one that runs on or waits for
# an interrupt.
e2e_why_stuck() {
    echo "e2e: guest $1 gave no verdict within $2 s; its state follows"
    xl list
    xl vcpu-list "$1"
    # Xen prints its 'q' dump on the serial console itself; xvdm's lines
    # reach it through e2e_follow_logs' tail, which looks once a second.
    kill -USR1 "$xvdm_pid" 2>/dev/null
    sleep 3
    xl debug-keys q
    tail -n 20 "/var/log/xen/guest-$1.log" | sed 's/^/e2e: console: /'
}

# Copy the guest's console and xvdm's log to dom0's console as they grow,
# so the serial log has them even if dom0 itself gets stuck. The guest's
# log starts empty: xenconsoled appends, and a guest of the same name
# earlier in the boot (peers-slow's, before peers') left its verdict
# there, which e2e_wait_guest would take for this guest's. Called before
# the guest is unpaused, so nothing of it is lost.
e2e_follow_logs() {
    : >"/var/log/xen/guest-$1.log"
    touch "$2"
    tail -F "/var/log/xen/guest-$1.log" 2>/dev/null | sed 's/^/[guest] /' &
    tail -F "$2" 2>/dev/null | sed 's/^/[xvdm] /' &
}

e2e_stop_following() {
    sleep 1
    killall tail 2>/dev/null
}

# Print the domid of guest NAME once libxl has written its virtio
# backend nodes (what the supervisor waits for too), within $2 seconds:
# a disk=[...] line's (virtio_disk) or a virtio=[...] line's (virtio).
e2e_wait_backend_nodes() {
    be=/local/domain/0/backend
    for _ in $(seq "$(($2 * 5))"); do
        if domid=$(xl domid "$1" 2>/dev/null) &&
            { xenstore-list "$be/virtio_disk/$domid" >/dev/null 2>&1 ||
                xenstore-list "$be/virtio/$domid" >/dev/null 2>&1; }; then
            echo "$domid"
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# 0 once every virtio device of domain $1 is in InitWait (state 2) or
# later, within $2 seconds.
e2e_wait_served() {
    for _ in $(seq "$(($2 * 5))"); do
        waiting=0
        for kind in virtio_disk virtio; do
            dir=/local/domain/0/backend/$kind/$1
            for dev in $(xenstore-list "$dir" 2>/dev/null); do
                state=$(xenstore-read "$dir/$dev/state" 2>/dev/null)
                [ "${state:-0}" -ge 2 ] || waiting=1
            done
        done
        [ "$waiting" -eq 0 ] && return 0
        sleep 0.2
    done
    return 1
}

# Wait up to $2 seconds for process $1 to exit; its status, or 124.
e2e_wait_exit() {
    for _ in $(seq "$2"); do
        kill -0 "$1" 2>/dev/null || break
        sleep 1
    done
    kill -0 "$1" 2>/dev/null && return 124
    wait "$1"
}

# Start guest NAME from CONFIG the way a user does: `xl create`, and
# `xvdm --xenstore` serving the devices its config declares (plus any
# DEVICE... given, as --device specs) and answering libxl's handshake, so
# that xl create can finish; then unpause it. xvdm runs hardened: as
# nobody, chrooted in an empty directory, under its seccomp allowlist.
# Sets $xvdm_pid and $log (xvdm's log) for e2e_finish_guest and for what
# the scenario does meanwhile. 0 when the guest is running.
e2e_start_guest() {
    name=$1
    config=$2
    shift 2
    devices=""
    for spec in "$@"; do
        devices="$devices --device $spec"
    done
    log=/var/log/xvdm-$name.log
    xl create -p "$config" >"/tmp/xl-create-$name.log" 2>&1 &
    create=$!
    if ! domid=$(e2e_wait_backend_nodes "$name" 30); then
        echo "e2e: no virtio backend nodes for $name"
        wait "$create"
        cat "/tmp/xl-create-$name.log"
        return 1
    fi
    e2e_follow_logs "$name" "$log"
    started=$(cut -d' ' -f1 /proc/uptime)
    # shellcheck disable=SC2086 # the specs have no spaces
    # shellcheck disable=SC2086 # E2E_XVDM_OPTS: options, no spaces inside
    xvdm --domid "$domid" --xenstore $devices --foreground \
        --log-level debug --user nobody --chroot /var/empty --seccomp \
        ${E2E_XVDM_OPTS:-} >"$log" 2>&1 &
    xvdm_pid=$!
    if ! wait "$create"; then
        echo "e2e: xl create failed:"
        cat "/tmp/xl-create-$name.log"
        kill -TERM "$xvdm_pid" 2>/dev/null
        e2e_stop_following
        return 1
    fi
    echo "e2e: xl create done $(awk -v s="$started" '{ printf "%.2f", $1 - s }' \
        /proc/uptime) s after xvdm started (libxl waits 10 s at most)"
    # libxl does not wait for virtio = [...] devices: unpause once xvdm
    # serves every device (the order README gives for xvdm run by hand).
    e2e_wait_served "$domid" 30 ||
        echo "e2e: not every device of $name in InitWait after 30 s"
    # A scenario may act while xvdm serves and the guest waits
    # ($e2e_before_unpause: a command).
    ${e2e_before_unpause:-}
    xl unpause "$name"
    echo "e2e: guest $name running"
}

# Wait for the guest e2e_start_guest started to give its verdict and power
# off. xl destroys it then (on_poweroff = "destroy"): libxl closes the
# devices, and xvdm must let go of the guest and exit 0 by itself for the
# domain to go away. 0 when the guest passed, xvdm exited 0 on its own
# and the domain is gone.
e2e_finish_guest() {
    e2e_wait_guest "$name" "${e2e_guest_seconds:-240}"
    verdict=$?
    grep -q "GUEST DONE" "/var/log/xen/guest-$name.log" 2>/dev/null ||
        e2e_why_stuck "$name" "${e2e_guest_seconds:-240}"
    e2e_wait_exit "$xvdm_pid" 60
    xvdm_status=$?
    if [ "$xvdm_status" -eq 124 ]; then
        echo "e2e: xvdm did not exit within 60 s of the guest's verdict" \
            "or of the wait for it running out"
        kill -TERM "$xvdm_pid" 2>/dev/null
        wait "$xvdm_pid"
    fi
    gone=1
    for _ in $(seq 30); do
        xl domid "$name" >/dev/null 2>&1 || { gone=0; break; }
        sleep 1
    done
    [ "$gone" -eq 0 ] || echo "e2e: domain $name still exists"
    e2e_stop_following
    echo "e2e: xvdm exited with status $xvdm_status"
    [ "$verdict" -eq 0 ] && [ "$xvdm_status" -eq 0 ] && [ "$gone" -eq 0 ]
}

# Run guest NAME from CONFIG [DEVICE...] start to finish (see above).
e2e_run_guest() {
    e2e_start_guest "$@" && e2e_finish_guest
}

# While process $1 (xl create) runs, time libxl's wait for the backend:
# from the first virtio disk node appearing to its state reaching 2
# (InitWait). libxl gives up after 10 s.
e2e_time_handshake() {
    be=/local/domain/0/backend/virtio_disk
    nodes_at=""
    while kill -0 "$1" 2>/dev/null; do
        now=$(cut -d' ' -f1 /proc/uptime)
        if [ -z "$nodes_at" ]; then
            dom=$(xenstore-list "$be" 2>/dev/null | head -1)
            dev=$(xenstore-list "$be/$dom" 2>/dev/null | head -1)
            [ -n "$dev" ] && nodes_at=$now
        elif [ "$(xenstore-read "$be/$dom/$dev/state" 2>/dev/null)" = 2 ]; then
            echo "e2e: handshake: InitWait $(awk -v a="$nodes_at" -v b="$now" \
                'BEGIN { printf "%.1f", b - a }') s after libxl wrote the" \
                "nodes (limit 10 s), via the supervisor"
            return 0
        fi
        sleep 0.5 # dom0 has one emulated vCPU: look, but not too often
    done
}

# Run guest NAME from CONFIG with nothing but `xl create` (not paused:
# libxl unpauses it right after the handshake) while the xvdm supervisor
# runs, started and stopped by the installed init script the way a dom0's
# init system does (/etc/init.d/xvdm, options in /etc/default/xvdm; it
# daemonizes and logs to syslog). The supervisor must start the guest's
# instance in time for libxl's 10 s wait, and the instance (hardened like
# e2e_run_guest's) must exit 0 by itself when xl destroys the powered-off
# guest. 0 when all of that held and the script stopped the supervisor.
e2e_run_guest_supervised() {
    e2e_start_guest_supervised "$1" "$2" && e2e_finish_guest_supervised
}

# The start of that: with DEVICE... (--device specs) written to the
# guest's own file, /etc/xen/xvdm/NAME.conf, for the instances to read.
# Sets $domid, $log (syslog, where the instances' lines start with
# "domD: ") and $xvdm_prefix ("domD: ") for what follows.
e2e_start_guest_supervised() {
    name=$1
    config=$2
    shift 2
    log=/var/log/messages
    if [ "$#" -gt 0 ]; then
        mkdir -p /etc/xen/xvdm
        printf '%s\n' "$@" >"/etc/xen/xvdm/$name.conf"
    fi
    e2e_follow_logs "$name" "$log"
    mkdir -p /etc/default
    echo 'XVDM_OPTS="--log-level debug --user nobody --chroot /var/empty --seccomp"' \
        >/etc/default/xvdm || return 1
    if ! /etc/init.d/xvdm start; then
        echo "e2e: /etc/init.d/xvdm start failed"
        e2e_stop_following
        return 1
    fi
    xl create "$config" >"/tmp/xl-create-$name.log" 2>&1 &
    create=$!
    e2e_time_handshake "$create"
    if ! wait "$create"; then
        echo "e2e: xl create failed:"
        cat "/tmp/xl-create-$name.log"
        /etc/init.d/xvdm stop
        e2e_stop_following
        return 1
    fi
    domid=$(xl domid "$name")
    xvdm_prefix="dom$domid: "
    # Devices libxl declares late make the supervisor start the instance
    # again; once it unpauses the guest, the instance serving it stays.
    for _ in $(seq 60); do
        grep -q "domain $domid: unpaused" "$log" && break
        sleep 1
    done
    echo "e2e: guest $name running"
}

e2e_finish_guest_supervised() {
    e2e_wait_guest "$name" 240
    verdict=$?
    exited=1
    for _ in $(seq 60); do
        grep -q "domain $domid: xvdm exited" "$log" && { exited=0; break; }
        sleep 1
    done
    [ "$exited" -eq 0 ] || echo "e2e: the guest's xvdm did not exit by itself"
    /etc/init.d/xvdm stop
    supervisor_status=$?
    /etc/init.d/xvdm status >/dev/null
    status_after=$?
    e2e_stop_following
    echo "e2e: /etc/init.d/xvdm stop: status $supervisor_status, then" \
        "'status' says $status_after (3: not running)"
    [ "$verdict" -eq 0 ] && [ "$exited" -eq 0 ] &&
        [ "$supervisor_status" -eq 0 ] && [ "$status_after" -eq 3 ]
}

# e2e_nc_receive PORT FILE: append to FILE what each connection to PORT
# sends, one connection after another, until nc is killed. nc's input is a
# FIFO held open and never written: it sends nothing back, and never closes
# its side before the sender has (nc exits when the sender closes).
e2e_nc_receive() {
    [ -p /tmp/e2e-quiet ] || mkfifo /tmp/e2e-quiet
    (
        exec 4<>/tmp/e2e-quiet
        while :; do nc -l -p "$1" <&4 >>"$2" || break; done
    ) &
}

# e2e_bridge NAME ADDRESS/PREFIX: a bridge in dom0 with an address, up.
e2e_bridge() {
    brctl addbr "$1" && ip addr add "$2" dev "$1" && ip link set "$1" up
}

# Scenarios share dom0: each takes its bridges down however it ends.
e2e_remove_bridges() {
    for b in "$@"; do
        ip link set "$b" down 2>/dev/null
        brctl delbr "$b" 2>/dev/null
    done
}

# Scenarios share the loop devices: each lets go of them however it ends.
e2e_release_loop() {
    umount /mnt 2>/dev/null
    losetup -d /dev/loop0 2>/dev/null
    losetup -d /dev/loop1 2>/dev/null
}

# With xvdm's log in $log: find the guest console's pty there, read the
# line the guest writes to its virtio console port and answer it. Sets
# $console_line to what was read ("" if nothing).
e2e_console_answer() {
    # (xl create need not wait for xvdm on Xen >= 4.18: it may not have
    # opened the pty yet)
    for _ in $(seq 60); do
        pty=$(sed -n "s|.*${xvdm_prefix:-}.*guest console on \(/dev/pts/[0-9]*\).*|\1|p" \
            "$log" | tail -1)
        [ -n "$pty" ] && break
        sleep 1
    done
    echo "e2e: the guest's virtio console is $pty"
    console_line=""
    [ -c "$pty" ] || return 1
    exec 3<>"$pty"
    # The guest writes its line once its scenario runs.
    read -r -t 120 console_line <&3
    console_line=$(echo "$console_line" | tr -d '\r')
    echo "e2e: dom0 read from the console: '$console_line'"
    echo "dom0 heard: $console_line" >&3
}

# 0 when guest NAME's console log says the guest read back dom0's answer
# to $console_line.
e2e_console_heard() {
    heard=$(sed -n 's/.*GUEST CONSOLE HEARD \(.*\)/\1/p' \
        "/var/log/xen/guest-$1.log" | tr -d '\r' | tail -1)
    echo "e2e: the guest read back: '$heard'"
    case "$console_line" in "hello from the guest "*) ;; *) return 1 ;; esac
    [ "$heard" = "dom0 heard: $console_line" ]
}

# Run guest NAME from CONFIG, whose virtio = [...] declares a blk, a net,
# a console and an rng device (the guest side is virtio.guest): xvdm
# --xenstore serves them, backed by a loop device over a 16 MiB image, a
# bridge br0 (10.0.0.1/24) and a pty, given on its command line; with
# $E2E_SUPERVISED set, the supervisor's instance serves them, given in
# the guest's own file. 0 when the guest passed, xvdm exited 0 by
# itself, and what the guest wrote to the disk and sent over the net
# arrived in dom0.
e2e_virtio_guest() {
    trap 'e2e_release_loop; killall nc 2>/dev/null; e2e_remove_bridges br0;
        /etc/init.d/xvdm stop >/dev/null 2>&1' EXIT
    e2e_bridge br0 10.0.0.1/24 || return 1
    dd if=/dev/zero of=/tmp/virtio-disk.img bs=1M count=16 2>/dev/null
    losetup /dev/loop0 /tmp/virtio-disk.img || return 1
    : >/tmp/from-guest
    e2e_nc_receive 5002 /tmp/from-guest
    how=
    [ -n "${E2E_SUPERVISED:-}" ] && how=_supervised
    "e2e_start_guest$how" "$1" "$2" blk,path=/dev/loop0 net,bridge=br0 \
        console,pty || return 1
    e2e_console_answer
    "e2e_finish_guest$how"
    verdict=$?
    exec 3>&-
    e2e_console_heard "$1" || verdict=1
    guest_log=/var/log/xen/guest-$1.log
    disk=$(sed -n 's/.*GUEST DISK \([0-9a-f]*\).*/\1/p' "$guest_log" | tail -1)
    sent=$(sed -n 's/.*GUEST NET SENT \([0-9a-f]*\).*/\1/p' "$guest_log" | tail -1)
    image=$(dd if=/tmp/virtio-disk.img bs=1M count=4 2>/dev/null | md5sum |
        cut -d' ' -f1)
    received=$(md5sum </tmp/from-guest | cut -d' ' -f1)
    echo "e2e: guest disk md5 ${disk:-none}, image md5 $image"
    echo "e2e: guest -> dom0 md5 ${sent:-none}, dom0 got $received"
    [ "$verdict" -eq 0 ] && [ "$disk" = "$image" ] && [ "$sent" = "$received" ]
}

# The peer comparison (peers.guest) for guest NAME from CONFIG, whose
# xvdm NIC is NETSPEC (declared by a device tree written with --print-dts
# to /tmp/peers.dtb, which CONFIG names): a disk and a NIC through xvdm
# and a disk and a NIC through Xen's PV backends.
e2e_peers() {
    net=$3
    config=$2
    # The NIC gets an SPI of its own (34; the disk has 33), so that an
    # interrupt of one device does not make the guest read the other's
    # InterruptStatus. Xen 4.18+ sizes a guest's SPIs by nr_spis; 4.17
    # asks for its virtio disk's (33) only, but Xen gives a guest SPIs in
    # banks of 32 (domain_vgic_init), so 34 is there too.
    net=$(echo "$net" | sed 's/irq=33/irq=34/')
    xen=$(xl info | sed -n 's/^xen_version *: //p')
    case "$xen" in
    4.17.*) ;;
    *)
        { cat "$2"; echo "nr_spis = 3"; } >/tmp/peers-own-spi.cfg
        config=/tmp/peers-own-spi.cfg
        ;;
    esac
    trap 'e2e_release_loop; killall httpd nc 2>/dev/null; e2e_remove_bridges br0 br1' \
        EXIT

    for m in xen-blkback xen-netback bridge tun; do modprobe "$m" || return 1; done
    e2e_bridge br0 10.0.0.1/24 && e2e_bridge br1 10.0.1.1/24 || return 1
    xvdm --print-dts --device "$net" >/tmp/peers.dts || return 1
    dtc -q -I dts -O dtb -o /tmp/peers.dtb /tmp/peers.dts || return 1
    dd if=/dev/zero of=/tmp/peer-xvdm.img bs=1M count=64 2>/dev/null
    dd if=/dev/zero of=/tmp/peer-blkback.img bs=1M count=64 2>/dev/null
    losetup /dev/loop0 /tmp/peer-xvdm.img &&
        losetup /dev/loop1 /tmp/peer-blkback.img || return 1

    # The guest downloads this over HTTP and uploads to the nc sink below
    # (1 MiB: peers.guest's NET_KIB).
    mkdir -p /tmp/www
    dd if=/dev/urandom of=/tmp/www/blob bs=64k count=16 2>/dev/null
    httpd -p 8080 -h /tmp/www || return 1
    e2e_nc_receive 5003 /dev/null

    # 24 fio runs of 2 s and 12 transfers: half of the time allowed on an
    # idle machine, under another build's load more. The .dom0 files'
    # "# limit:" leaves room for it.
    e2e_guest_seconds=480
    e2e_start_guest "$1" "$config" "$net" || return 1
    e2e_peers_marks "$1" &
    e2e_finish_guest || return 1
    # Which path each device took: the kernel's ioeventfd and irqfd, or
    # xvdm's loop.
    { grep -E "kicks and interrupts|fast path" "$log"
        grep "counters:" "$log" | tail -2; } | sed 's/^/e2e: path: /'
    e2e_peers_traps "/var/log/xen/guest-$1.log" "$log" /tmp/peers-marks |
        tee /tmp/peers-traps
    # The issue's targets: on 4.17 every row 0.25 of PV; on 4.20 the 4 KiB
    # rows 0.5 and the 1 MiB rows 0.9.
    case "$xen" in
    4.17.*) set -- "$1" 0.25 0.25 ;;
    *) set -- "$1" 0.5 0.9 ;;
    esac
    e2e_peers_stopped "/var/log/xen/guest-$1.log" /tmp/peers-ran \
        /tmp/peers-traps "$2" "$3"
}

# The guest's vCPU time per request on xvdm's disk, for each disk workload
# of guest log $1, from the vCPU's run times at its vmarks $2 (a pair
# around each fio job's I/O there): how long it ran (Xen's account, which
# includes Xen's own work on its traps), and how long it was stopped
# while the guest counted it busy (its busy time, in hundredths of a
# second, less that): blocked until dom0 answered a trap, or waiting for
# a pCPU.
# Beside them each side's time per request (1 / its rate) and xen-blkback's
# vCPU busy time per request, whose notifies do not stop it. Taking that
# as the guest's own work on either disk, the rest is what xvdm's traps
# per request (e2e_peers_traps' lines $3) cost: per trap, stopped and ran.
# Last, the most traps per request at that cost that leave time for a
# rate of $4 (4 KiB rows) or $5 (1 MiB rows) of xen-blkback's: at depth 1,
# where the rest of xvdm's time per request (dom0's) is in series with
# the vCPU's, within what that rate allows less that rest; deeper, within
# the vCPU's time alone. Fewer than the row has, and its traps keep it
# from that ratio, however fast dom0 answers them.
e2e_peers_stopped() {
    tr -d '\r' <"$1" | awk -v ran="$2" -v traps="$3" -v t4k="$4" -v t1m="$5" '
        BEGIN {
            from = 0
            while ((getline s < ran) > 0) t[nt++] = s
            while ((getline s < traps) > 0)
                if (match(s, /: traps per request: xvdm [0-9.]+/)) {
                    w = substr(s, 1, RSTART - 1); sub(/^e2e: peers: /, "", w)
                    v = substr(s, RSTART, RLENGTH); sub(/.* /, "", v)
                    per[w] = v + 0
                }
        }
        /peers: vmark/ { n++ }
        # trap-cost between the last two vmarks: N traps (and as many reads
        # without one), BUSY ticks, each trap MEDIAN us.
        /peers: trapped / {
            sub(/.*peers: trapped /, ""); split($0, f, " ")
            if (n > nt || n < 2 || f[1] <= 0) next
            stop = f[2] / 100 - (t[n - 1] - t[n - 2]) / 1e9
            stop = stop > 0 ? 1e6 * stop / f[1] : 0
            printf "e2e: peers: one trap into xvdm (idle): %.0f us, of which" \
                " the vCPU was stopped %.0f us and ran %.0f us\n", f[3], stop,
                f[3] - stop
            from = n
        }
        /peers: ran / {
            sub(/.*peers: ran /, ""); what = $0; sub(/: [0-9].*/, "", what)
            k = split($0, f, " ")
            ops = f[k - 5]; busy = f[k - 4] / 100
            ours = f[k - 1]; theirs = f[k]
            pv = f[k - 3] > 0 ? 1e6 * f[k - 2] / 100 / f[k - 3] : 0
            if (n > nt || ops <= 0 || ours <= 0 || theirs <= 0 ||
                per[what] <= 0) {
                printf "e2e: peers: %s: its vCPU times or traps missing\n", what
                from = n; next
            }
            for (run = 0; from + 1 < n; from += 2) run += t[from + 1] - t[from]
            from = n
            run = 1e6 * run / 1e9 / ops; busy = 1e6 * busy / ops
            # A vCPU that idles also runs, in Xen'"'"'s account, while Xen
            # blocks it on its WFI and switches back to it, time the guest
            # counts idle: what xvdm'"'"'s requests took of the vCPU is its
            # busy time, of which it ran at most all.
            run = run < busy ? run : busy
            stop = busy - run
            printf "e2e: peers: %s: per request, xvdm'"'"'s disk %.0f us, the" \
                " vCPU %.0f of it (ran %.0f, stopped %.0f); xen-blkback'"'"'s" \
                " %.0f us, the vCPU %.0f of it\n", what, 1e6 / ours,
                run + stop, run, stop, 1e6 / theirs, pv
            cost = (run + stop - pv) / per[what]
            if (cost <= 0) next
            target = what ~ /^[a-z]+ 4 KiB/ ? t4k : t1m
            wait = 1e6 / ours - run - stop
            budget = 1e6 / (target * theirs) - pv
            if (what ~ /QD1$/ && wait > 0) budget -= wait
            most = budget > 0 ? budget / cost : 0
            printf "e2e: peers: %s: beyond that, each of xvdm'"'"'s %.2f traps per" \
                " request cost the vCPU %.0f us (%.0f stopped, %.0f ran); at" \
                " that cost %s of xen-blkback'"'"'s rate leaves room for %.2f" \
                " traps per request%s\n", what, per[what], cost,
                stop / per[what], (run - pv) / per[what], target, most,
                (budget <= 0 ? ": the rest of xvdm'"'"'s time leaves none, traps or not" : \
                 most < per[what] ? ": the traps bound this row" : "")
        }'
}

# At each of guest $1's marks (peers.guest's mark()), until the guest's
# log is no longer followed: xvdm logs its counters (SIGUSR1), and a line
# of /tmp/peers-marks gets dom0's interrupt counts of xen-blkback's and
# xen-netback's event channels, the notifies the guest's PV drivers sent.
# At each vmark, a line of /tmp/peers-ran gets how long its vCPU has run.
e2e_peers_marks() {
    : >/tmp/peers-marks
    : >/tmp/peers-ran
    domid=$(xl domid "$1")
    tail -n +1 -F "/var/log/xen/guest-$1.log" 2>/dev/null | while read -r line; do
        case "$line" in
        *"peers: vmark"*)
            /e2e/vcpu-ran "$domid" >>/tmp/peers-ran
            ;;
        *"peers: mark"*)
            kill -USR1 "$xvdm_pid"
            awk '{ n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i }
                $NF == "blkif-backend" { b += n }
                $NF ~ /^vif[0-9]+\.[0-9]+-q[0-9]+/ { v += n }
                END { print b + 0, v + 0 }' /proc/interrupts >>/tmp/peers-marks
            ;;
        esac
    done
}

# The traps per request (per MiB for the NICs) of each workload peers.guest
# counted, from guest log $1, xvdm log $2 and dom0's counts at the marks
# $3: the difference of xvdm's counters at the marks around the workload
# (its disk's for requests, its NIC's for MiB), by the path that answered
# them, and the time its loop spent draining the device's queues; beside
# them the notifies the PV driver sent dom0 meanwhile. A
# virtio trap stops the guest's vCPU until it is answered; a PV notify
# does not wait.
e2e_peers_traps() {
    tr -d '\r' <"$1" | awk -v xvdm="$2" -v marks="$3" '
        function num(s, what) {
            return match(s, "[0-9]+ " what) ? substr(s, RSTART, RLENGTH) + 0 : 0
        }
        # "requests through-xvdm by-the-kernel drain-us" of a counters
        # line (drain-us: the time its drains took, in all).
        function counters(s,   us) {
            us = match(s, "drains, [0-9.]+ us") ? substr(s, RSTART + 8, RLENGTH - 11) : 0
            return num(s, "requests") " " num(s, "InterruptStatus") + \
                num(s, "InterruptACK") + num(s, "QueueNotify") + \
                num(s, "other registers") + num(s, "config") " " \
                num(s, "through the host") + num(s, "ACKs through the host") \
                " " num(s, "drains") * us
        }
        BEGIN {
            while ((getline s < xvdm) > 0) {
                if (s ~ / blk0: counters: /) blk[nb++] = counters(s)
                if (s ~ / net0: counters: /) net[nn++] = counters(s)
            }
            while ((getline s < marks) > 0) pv[np++] = s
        }
        /peers: mark/ { m++ }
        /peers: counted / {
            sub(/.*peers: counted /, "")
            what = $0; sub(/: [a-zA-Z]+ xvdm .*/, "", what)
            unit = $0; sub(/.*: /, "", unit); sub(/ xvdm .*/, "", unit)
            n = split($0, f, " ")
            ours = f[n - 2] + 0; peer = f[n - 1]; theirs = f[n] + 0
            if (m < 2 || ours <= 0 || theirs <= 0) next
            if ((unit == "request" ? nb : nn) < m || np < m) {
                printf "e2e: peers: %s: xvdm'"'"'s counters missing at its marks\n", what
                next
            }
            split(unit == "request" ? blk[m - 2] : net[m - 2], a, " ")
            split(unit == "request" ? blk[m - 1] : net[m - 1], b, " ")
            split(pv[m - 2], p, " "); split(pv[m - 1], q, " ")
            col = unit == "request" ? 1 : 2
            printf "e2e: peers: %s: traps per %s: xvdm %.2f (%.2f through" \
                " xvdm, %.2f answered by dom0'"'"'s kernel), its drains took" \
                " %.0f us; %s %.2f notifies to dom0\n", what, unit,
                (b[2] - a[2] + b[3] - a[3]) / ours, (b[2] - a[2]) / ours,
                (b[3] - a[3]) / ours, (b[4] - a[4]) / ours, peer,
                (q[col] - p[col]) / theirs
        }'
}

# The rate (MiB/s) of the SOURCE line for address $2 in file $1.
e2e_vsock_rate() {
    tr -d '\r' <"$1" | awk -v a="$2" '$1 == "SOURCE" && $2 == a { r = $6 } END { print r }'
}

# dom0's side of vsock.guest for guest $1 (config $2; further device specs
# after it): sinks for the guest's streams on the sockets xvdm connects to
# (inside xvdm's --chroot /var/empty, where it still reaches them), then
# streams into the guest through xvdm's socket. With a net device, the
# same 8 MiB both ways over TCP, and the throughput ratio vsock / TCP.
e2e_vsock() {
    name=$1
    config=$2
    shift 2
    vsock_dir=/var/empty/vsock
    vsock="vsock,uds=$vsock_dir/v.sock"
    if grep -q '^device_tree' "$config"; then
        vsock="$vsock,base=0x2000200,irq=33"
        xvdm --print-dts --device "$vsock" >/tmp/vsock.dts || return 1
        dtc -q -I dts -O dtb -o /tmp/vsock.dtb /tmp/vsock.dts || return 1
    fi
    mkdir -p "$vsock_dir"
    vsock_sinks=
    for s in 6000:1 6001:16; do
        /e2e/vsock-peer sink "unix:$vsock_dir/v.sock_${s%:*}" "${s#*:}" \
            >"/tmp/sink-${s%:*}.log" 2>&1 &
        vsock_sinks="$vsock_sinks $!"
    done
    vsock_tcp=
    case "$*" in *net,*)
        vsock_tcp=1
        /e2e/vsock-peer sink tcp:6002 1 >/tmp/sink-6002.log 2>&1 &
        vsock_sinks="$vsock_sinks $!" ;;
    esac
    e2e_start_guest "$name" "$config" "$vsock" "$@" || return 1
    vsock_ok=0
    /e2e/vsock-peer source "unix:$vsock_dir/v.sock" 1 8388608 5000 \
        >/tmp/source.log || vsock_ok=1
    /e2e/vsock-peer source "unix:$vsock_dir/v.sock" 16 1048576 5000 \
        >>/tmp/source.log || vsock_ok=1
    if [ -n "$vsock_tcp" ]; then
        /e2e/vsock-peer source tcp:10.0.0.2:5002 1 8388608 \
            >>/tmp/source.log || vsock_ok=1
    fi
    e2e_finish_guest || vsock_ok=1
    for pid in $vsock_sinks; do
        e2e_wait_exit "$pid" 30 || { echo "e2e: a dom0 sink failed"; vsock_ok=1; }
    done
    cat /tmp/sink-*.log
    guest=/var/log/xen/guest-$name.log
    d2g=$(e2e_vsock_rate /tmp/source.log "unix:$vsock_dir/v.sock")
    g2d=$(e2e_vsock_rate "$guest" vsock:2:6000)
    echo "e2e: dom0 -> guest vsock: 8 MiB at ${d2g:-?} MiB/s; 16 streams" \
        "of 1 MiB: $(grep -c "^SOURCE unix:$vsock_dir/v.sock 16 " /tmp/source.log) ok"
    echo "e2e: guest -> dom0 vsock: 8 MiB at ${g2d:-?} MiB/s; 16 streams" \
        "of 1 MiB: $(tr -d '\r' <"$guest" | grep -c "^SOURCE vsock:2:6001 16 ") ok"
    if [ -n "$vsock_tcp" ]; then
        d2gt=$(e2e_vsock_rate /tmp/source.log tcp:10.0.0.2:5002)
        g2dt=$(e2e_vsock_rate "$guest" tcp:10.0.0.1:6002)
        echo "e2e: dom0 -> guest TCP on virtio-net: 8 MiB at ${d2gt:-?} MiB/s;" \
            "vsock / TCP $(awk -v a="$d2g" -v b="$d2gt" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
        echo "e2e: guest -> dom0 TCP on virtio-net: 8 MiB at ${g2dt:-?} MiB/s;" \
            "vsock / TCP $(awk -v a="$g2d" -v b="$g2dt" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
    fi
    grep -E "counters:" "$log" | sed 's/^/e2e: path: /'
    [ "$vsock_ok" -eq 0 ] && [ -n "$d2g" ] && [ -n "$g2d" ]
}

# The gpu scenario (gpu.dom0, gpu-dt.dom0) for guest NAME of xl config
# CONFIG: xvdm serves the guest's virtio-gpu with its screen on a VNC
# socket and its virtio-input as that screen's VNC keyboard, declared by
# CONFIG's virtio = [...] or, when CONFIG has a device_tree (Xen 4.17), by
# the partial device tree xvdm --print-dts writes. Once the guest has
# drawn its four bands (gpu.guest), dom0 takes a screenshot with
# vnc-screenshot, compares it byte for byte with the bands it expects,
# types "xvdm", and the guest reports the keys. The screenshot goes to the
# serial log as base64 between markers, for run-e2e to keep as
# gpu-screenshot.png.
e2e_gpu() {
    name=$1
    config=$2
    xres=640
    yres=480
    sock=/var/empty/gpu-vnc.sock
    guest_log=/var/log/xen/guest-$name.log
    gpu="gpu,xres=$xres,yres=$yres,vnc=unix:$sock"
    input=input,vnc=gpu0.keyboard
    if grep -q '^device_tree' "$config"; then
        gpu="$gpu,base=0x2000200,irq=33"
        input="$input,base=0x2000400,irq=34"
        xvdm --print-dts --device "$gpu" --device "$input" >/tmp/gpu.dts ||
            return 1
        dtc -q -I dts -O dtb -o /tmp/gpu.dtb /tmp/gpu.dts || return 1
    fi
    e2e_start_guest "$name" "$config" "$gpu" "$input" || return 1
    drawn=1
    for _ in $(seq 120); do
        grep -q "GUEST GPU DRAWN" "$guest_log" && { drawn=0; break; }
        sleep 1
    done
    if [ "$drawn" -eq 0 ]; then
        echo "e2e: gpu: the guest drew its bands"
    else
        echo "e2e: gpu: the guest drew nothing within 120 s"
    fi
    # What the screen must be: the bands as RGB, in a PPM as vnc-screenshot
    # writes one.
    band=$((xres * (yres / 4) * 3))
    {
        printf 'P6\n%d %d\n255\n' "$xres" "$yres"
        for px in '\377\000\000' '\000\377\000' '\000\000\377' '\377\377\377'; do
            # shellcheck disable=SC2059 # the format is the pixel's octal escapes
            printf "$px" >/tmp/px
            while [ "$(wc -c </tmp/px)" -lt "$band" ]; do
                cat /tmp/px /tmp/px >/tmp/px2
                mv /tmp/px2 /tmp/px
            done
            head -c "$band" /tmp/px
        done
    } >/tmp/gpu-want.ppm
    # The guest's damage reaches xvdm within its flush delay: a few tries.
    shot=1
    for _ in $(seq 10); do
        vnc-screenshot "unix:$sock" /tmp/gpu-shot.ppm &&
            cmp -s /tmp/gpu-shot.ppm /tmp/gpu-want.ppm && { shot=0; break; }
        sleep 1
    done
    if [ "$shot" -eq 0 ]; then
        echo "e2e: gpu screenshot: ${xres}x${yres}, $(wc -c </tmp/gpu-shot.ppm)" \
            "bytes of PPM, identical to the guest's four bands"
    else
        echo "e2e: gpu screenshot differs from the guest's bands:" \
            "$(cmp -l /tmp/gpu-shot.ppm /tmp/gpu-want.ppm 2>&1 | wc -l) bytes," \
            "the first: $(cmp /tmp/gpu-shot.ppm /tmp/gpu-want.ppm 2>&1)"
    fi
    if vnc-screenshot "unix:$sock" /tmp/gpu-shot.png; then
        echo "e2e: gpu screenshot PNG md5 $(md5sum </tmp/gpu-shot.png | cut -d' ' -f1)"
        echo "E2E GPU PNG BEGIN"
        base64 /tmp/gpu-shot.png
        echo "E2E GPU PNG END"
    fi
    typed=0
    vnc-screenshot --type xvdm "unix:$sock" /tmp/gpu-after.ppm || typed=1
    echo "e2e: typed 'xvdm' through VNC (status $typed)"
    e2e_finish_guest && [ "$drawn" -eq 0 ] && [ "$shot" -eq 0 ] &&
        [ "$typed" -eq 0 ]
}
