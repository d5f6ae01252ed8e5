#!/usr/bin/env bash
# The xvdm command line as a user meets it: help, version, the device
# list, and a clear message with the right exit status for each mistake.
set -uo pipefail
xvdm=${XVDM_BINARY:?XVDM_BINARY must be set (make check sets it)}
failures=0
checks=0

# expect STATUS PATTERN ARGS...: exit status and a line matching PATTERN.
# xvdm starts with the signals in $ignored (HUP USR1 ...) ignored, as
# nohup or a shell leaves them.
ignored=
expect() {
    local want=$1 pattern=$2 out status
    shift 2
    checks=$((checks + 1))
    out=$(if [ -n "$ignored" ]; then trap '' $ignored; fi; "$xvdm" "$@" 2>&1)
    status=$?
    if [ "$status" -ne "$want" ] || ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: xvdm $*: status $status (want $want), output:"
        echo "$out" | sed 's/^/    /'
        echo "    (wanted a line matching: $pattern)"
        failures=$((failures + 1))
    fi
}

expect 0 "^Usage: xvdm --domid" --help
expect 0 "^xvdm [0-9]+\.[0-9]+" --version
expect 0 "^rng +virtio id 4" --list-devices
expect 0 "^input +virtio id 18 +input device" --list-devices
# A module's own library there (blk+rbd.so, built with librbd) is not a
# device: the list neither shows it nor fails on it.
if [ -e "${XVDM_MODULE_DIR:-}/blk+rbd.so" ]; then
    checks=$((checks + 1))
    if "$xvdm" --list-devices 2>&1 | grep -qF "blk+rbd"; then
        echo "FAIL: xvdm --list-devices names blk+rbd.so"
        failures=$((failures + 1))
    fi
fi
expect 0 "^gpu +virtio id 16 +2D display adapter" --list-devices
expect 2 "--domid is required" --device rng
expect 2 "at least one --device is required" --domid 5
expect 2 "--domid 'zero' is not a guest domain id" --domid zero --device rng
expect 2 "--domid '0' is not a guest domain id" --domid 0 --device rng
expect 2 "unknown option '--frobnicate'" --frobnicate
expect 2 "missing value for '--domid'" --domid
expect 2 "unexpected argument 'extra'" --domid 5 --device rng extra
expect 2 "--log-level 'loud' is not one of" --log-level loud
expect 2 "--poll-us '2000' is not a number of microseconds \(0..1000\)" \
    --poll-us 2000 --domid 5 --device rng
expect 2 "--poll-us 'soon' is not a number of microseconds" --poll-us soon
expect 2 "--fast-path 'fast' is not one of auto, off, on" --fast-path fast
expect 2 "--grant-pages '100' is not a number of pages \(8192..4194304\)" --grant-pages 100
expect 2 "unknown device type 'floppy' \(in .*: blk, console, gpio, gpu, i2c, input, net, rng" -F --domid 5 \
    --device floppy
expect 2 "unknown option 'speed' \(accepted: none\)" -F --domid 5 \
    --device rng,speed=9
expect 2 "'rng,base=0x2000000' both use window 0x2000000" --domid 5 \
    --device rng,base=0x2000000 --device rng,base=0x2000000
expect 2 "irq=7 is not an SPI" --domid 5 --device rng,irq=7
expect 2 "--user 'no-such-user-xvdm': no such user" --domid 5 --device rng \
    --user no-such-user-xvdm
expect 2 "--user 'root' is root" --domid 5 --device rng --user root
expect 2 "--chroot '/no/such/dir' is not a directory" --domid 5 \
    --device rng --chroot /no/such/dir
expect 2 "base='nowhere' is not an address" --domid 5 \
    --device rng,base=nowhere
# A build without libseccomp cannot filter system calls, and says so
# rather than serve unfiltered.
if [ -z "${XVDM_BUILT_WITH_SECCOMP:-}" ]; then
    expect 2 "--seccomp: this xvdm was built without libseccomp" \
        --domid 5 --device rng --seccomp
fi
# No Xen on this machine: one line that says so, status 1, in the
# foreground and when daemonizing (the parent reports the child's failure).
if [ ! -e /dev/xen/privcmd ]; then
    expect 1 "cannot connect to xenstore" -F --domid 5 --xenstore
    expect 1 "cannot open Xen's device-model interface" -F --domid 5 \
        --device rng
    expect 1 "cannot open Xen's device-model interface" --domid 5 \
        --device rng
    # SIGTERM sent before xvdm daemonized (the module sends it while
    # xvdm checks its options) reaches the daemon, and the parent still
    # reports the daemon's outcome rather than dying of it.
    expect 1 "signal-early: the daemon got SIGTERM" --domid 5 \
        --module-dir "${XVDM_TEST_MODULE_DIR:?}" --device signal-early
    # Started with SIGHUP or SIGUSR1 ignored (nohup, a shell or an init
    # that ignores it), xvdm still gets it: blocked from its first line,
    # a signal stays pending for its signalfd whatever its action (Linux
    # discards only ignored signals that are not blocked).
    for sig in HUP USR1; do
        SIGNAL_EARLY=$sig ignored=$sig expect 1 \
            "signal-early: the daemon got SIG$sig\$" --domid 5 \
            --module-dir "$XVDM_TEST_MODULE_DIR" --device signal-early
    done
fi

# Device-tree nodes for devices xl does not declare: an rng in the window
# after a disk's, sharing its SPI (Xen 4.17 guests have no spare SPIs).
expect 0 "virtio@2000200 \{" --print-dts --device rng,base=0x2000200,irq=33
expect 0 "reg = <0x0 0x2000200 0x0 0x200>;" --print-dts \
    --device rng,base=0x2000200,irq=33
expect 0 "interrupts = <0 1 1>;" --print-dts --device rng,base=0x2000200,irq=33
expect 0 "interrupts = <0 2 1>;" --print-dts --device rng --device rng
expect 0 "iommus = <65100 0>;" --print-dts --device rng,grants=on
expect 0 "compatible = \"xen,grant-dma\";" --print-dts --device rng,grants=on
expect 2 "grants='maybe' is not on or off" --print-dts --device rng,grants=maybe
expect 2 "--print-dts prints the --device devices" --print-dts --xenstore \
    --domid 5
expect 2 "unknown device type 'floppy'" --print-dts --device floppy
# An I2C adapter's node has the bus as its child (i2c-virtio.yaml), for
# the guest's nodes of its chips.
i2c=i2c,bus=/dev/i2c-1,addrs=0x50:0x51
expect 0 "^"$'\t\t\t'"i2c \{" --print-dts --device "$i2c"
expect 0 "compatible = \"virtio,device22\";" --print-dts --device "$i2c"
expect 0 "#size-cells = <0>;" --print-dts --device "$i2c"
# ',' ends an option: a second address is a key of its own.
expect 2 "0x51" --print-dts --device i2c,bus=/dev/i2c-1,addrs=0x50,0x51
# A GPIO chip's node has the controller as its child (gpio-virtio.yaml),
# for the guest's nodes that use its lines and interrupts.
gpio=gpio,chip=/dev/gpiochip0,lines=0-7
expect 0 "^"$'\t\t\t'"gpio \{" --print-dts --device "$gpio"
expect 0 "compatible = \"virtio,device29\";" --print-dts --device "$gpio"
expect 0 "#interrupt-cells = <2>;" --print-dts --device "$gpio"
expect 0 "gpio-controller;" --print-dts --device "$gpio"
# An SCMI platform's node (arm,scmi.yaml) in /passthrough, which libxl
# copies, its sensor protocol with one cell for thermal zones' sensors,
# its reset protocol with one for the domain a device's resets name.
scmi=scmi,sensors=soc:temp:45000
expect 0 "^"$'\t\t'"scmi \{" --print-dts --device "$scmi"
expect 0 "compatible = \"arm,scmi-virtio\";" --print-dts --device "$scmi"
expect 0 "^"$'\t\t\t'"protocol@15 \{" --print-dts --device "$scmi"
expect 0 "reg = <0x15>;" --print-dts --device "$scmi"
expect 0 "#thermal-sensor-cells = <1>;" --print-dts --device "$scmi"
expect 0 "^"$'\t\t\t'"protocol@16 \{" --print-dts --device "$scmi"
expect 0 "reg = <0x16>;" --print-dts --device "$scmi"
expect 0 "#reset-cells = <1>;" --print-dts --device "$scmi"
if command -v dtc >/dev/null; then
    checks=$((checks + 1))
    if ! "$xvdm" --print-dts --device rng,irq=33 --device rng,grants=on \
        --device "$i2c" --device "$gpio" --device "$scmi" |
        dtc -q -I dts -O dtb -o /dev/null -; then
        echo "FAIL: dtc does not take the output of xvdm --print-dts"
        failures=$((failures + 1))
    fi
fi

echo "test-cli: $((checks - failures)) of $checks checks passed"
[ "$failures" -eq 0 ]
