#!/bin/busybox sh
# /init of the xenops tiny guest: runs as PID 1 from the initramfs, talks on the serial console.
# Everything it prints for programs starts with "xenops-guest " so readers can tell its lines from
# the kernel's. PID 1 must never exit (the kernel panics when init dies): every path ends in a
# loop or in a reboot/power-off system call.

/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin
exec </dev/console >/dev/console 2>&1

say() { echo "xenops-guest $*"; }

while read -r module; do
  insmod "/lib/modules/$module.ko" || say "warning: module $module did not load"
done </etc/xenops-guest/modules

# `echo c > /proc/sysrq-trigger` works whatever this says; enabled so a human on the console can use
# the SysRq keys too.
echo 1 >/proc/sys/kernel/sysrq
hostname xenops-guest
ip link set lo up
for nic in /sys/class/net/*; do ip link set "${nic##*/}" up 2>/dev/null; done

power_off() {
  say "powering off ($1)"
  poweroff -f
}

# The ACPI power button is an input device once `button` and `evdev` are loaded: any event read
# from it (the press) means power off. One watcher per button (QEMU's q35 shows one; a second,
# the fixed-feature button, appears on some firmware).
for input in /sys/class/input/input*; do
  [ "$(cat "$input/name" 2>/dev/null)" = "Power Button" ] || continue
  for event in "$input"/event*; do
    [ -e "$event" ] || continue
    ( dd if="/dev/input/${event##*/}" of=/dev/null bs=24 count=1 2>/dev/null && power_off "ACPI power button" ) &
  done
done

list_block_devices() {
  for dev in /sys/block/*; do
    name="${dev##*/}"
    case "$name" in loop* | ram* | zram*) continue ;; esac
    [ -e "$dev/size" ] || continue
    say "blk $name $(($(cat "$dev/size") * 512))"
  done
  say "lsblk done"
}

list_nics() {
  for nic in /sys/class/net/*; do
    name="${nic##*/}"
    [ "$name" = lo ] && continue
    # A hot-plugged NIC arrives down, and a down NIC has no readable carrier.
    ip link set "$name" up 2>/dev/null
    if [ "$(cat "$nic/carrier" 2>/dev/null)" = 1 ]; then link=up; else link=down; fi
    say "net $name $(cat "$nic/address") $link"
  done
  say "lsnet done"
}

# Typed characters are not echoed back, so the console carries only what the guest says.
stty -echo 2>/dev/null
say "ready"

(
  n=0
  while :; do
    n=$((n + 1))
    say "heartbeat $n"
    sleep 1
  done
) &

while :; do
  # read fails when the line is hung up; wait instead of spinning.
  if ! read -r command; then sleep 1; continue; fi
  case "$command" in
    lsblk) list_block_devices ;;
    lsnet) list_nics ;;
    reboot) say "rebooting"; reboot -f ;;
    poweroff) power_off "console command" ;;
    panic) say "panicking"; echo c >/proc/sysrq-trigger ;;
    "") ;;
    *) say "unknown command: $command (try lsblk, lsnet, reboot, poweroff, panic)" ;;
  esac
done
