#!/bin/sh
# speedia-install: /init of the installer initrd (docs/iso.md). Writes the
# disk image on the install medium onto an empty disk, then powers off; on
# any failure it says why and leaves a shell on the console.
#
# Sourced with SPEEDIA_INSTALL_LIB=1 it only defines its functions, for the
# tests, which point PROC, SYS, DEV and MNT at directories of their own.
#
# It runs under BusyBox's ash, which like dash has 'local': shellcheck
# checks it as dash.
# shellcheck shell=dash

PROC=${PROC:-/proc}
SYS=${SYS:-/sys}
DEV=${DEV:-/dev}
MNT=${MNT:-/run/medium}
WAIT=${WAIT:-30}      # seconds to wait for the medium to show up
MODULES=${MODULES:-/modules}

# CONSOLES are the devices of the kernel's active consoles (every console=
# on the command line); /dev/console is only the last of them, and an
# admin may watch another (a BMC's screen rather than its serial port).
CONSOLES=${CONSOLES:-}

say() {
	local c
	if [ -z "$CONSOLES" ]; then
		echo "speedia-install: $*" >&2
		return
	fi
	for c in $CONSOLES; do
		echo "speedia-install: $*" >"$c"
	done
}

fail() {
	say "FAILED: $*"
	rescue
}

# rescue keeps PID 1 alive with a shell on each console, started again when
# it exits.
rescue() {
	local c
	say "the disk was left as it is; a shell follows (poweroff -f to stop)"
	for c in ${CONSOLES:-/dev/console}; do
		(while :; do
			setsid -c sh <>"$c" >&0 2>&1
			sleep 1
		done) &
	done
	while :; do
		wait
		sleep 1
	done
}

# arg NAME: the value of NAME= on the kernel command line.
arg() {
	local a
	# The command line is one line of words: split on blanks on purpose.
	# shellcheck disable=SC2013
	for a in $(cat "$PROC/cmdline"); do
		case $a in "$1="*)
			echo "${a#*=}"
			return 0
			;;
		esac
	done
	return 1
}

# blockdevs: the names of whole block devices that may be a medium or a disk.
blockdevs() {
	local b n
	for b in "$SYS"/block/*; do
		n=${b##*/}
		case $n in sr* | sd* | vd* | xvd* | hd* | nvme*n* | mmcblk*) echo "$n" ;; esac
	done
}

# label_of DEV: the volume id of the ISO 9660 filesystem on DEV.
label_of() {
	local v
	[ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 1
	v=$(dd if="$1" bs=1 skip=32808 count=32 2>/dev/null)
	echo "${v%% *}"
}

# find_medium LABEL: the device holding our ISO, waiting up to WAIT seconds
# for the drivers to find it.
find_medium() {
	local i=0 n
	while :; do
		for n in $(blockdevs); do
			if [ "$(label_of "$DEV/$n")" = "$1" ]; then
				echo "$DEV/$n"
				return 0
			fi
		done
		[ "$i" -ge "$WAIT" ] && return 1
		sleep 1
		i=$((i + 1))
	done
}

# is_empty DEV: the first MiB of DEV is all zero (no partition table, no
# filesystem superblock at the start, no boot code).
is_empty() {
	cmp -s -n 1048576 "$1" /dev/zero
}

# sectors NAME: the size of block device NAME in 512-byte sectors.
sectors() {
	cat "$SYS/block/$1/size" 2>/dev/null || echo 0
}

# unsuitable NAME MEDIUM NEED_MIB FORCE EXPLICIT: why disk NAME cannot take
# the image; nothing if it can.
unsuitable() {
	local n="$1" medium="$2" need="$3" force="$4" explicit="$5" have
	if [ "$DEV/$n" = "$medium" ]; then
		echo "it is the install medium"
		return
	fi
	case $n in sr*)
		echo "it is an optical drive"
		return
		;;
	esac
	if [ "$explicit" != 1 ] && [ "$(cat "$SYS/block/$n/removable" 2>/dev/null)" = 1 ]; then
		echo "it is removable (name it with speedia.install.disk=$DEV/$n to use it)"
		return
	fi
	if [ "$(cat "$SYS/block/$n/ro" 2>/dev/null)" = 1 ]; then
		echo "it is read-only"
		return
	fi
	have=$(($(sectors "$n") / 2048))
	if [ "$have" -lt "$need" ]; then
		echo "it is too small ($have MiB, the image needs $need MiB)"
		return
	fi
	if ! is_empty "$DEV/$n"; then
		if [ "$force" = 1 ]; then
			say "$DEV/$n is not empty; overwriting it (speedia.install.force=1)"
		else
			echo "it is not empty: its first MiB holds data (speedia.install.force=1 overwrites it)"
		fi
	fi
}

# choose_disk MEDIUM NEED_MIB: the target disk, from speedia.install.disk=
# or the first whole disk that is suitable; says why others are not.
choose_disk() {
	local force want n why
	force=$(arg speedia.install.force) || force=0
	if want=$(arg speedia.install.disk); then
		n=${want#"$DEV"/}
		if [ ! -e "$SYS/block/$n" ]; then
			say "speedia.install.disk=$want: no such whole disk (use $DEV/NAME; have: $(blockdevs | tr '\n' ' '))"
			return 1
		fi
		why=$(unsuitable "$n" "$1" "$2" "$force" 1)
		if [ -n "$why" ]; then
			say "speedia.install.disk=$want: $why"
			return 1
		fi
		echo "$DEV/$n"
		return 0
	fi
	for n in $(blockdevs); do
		why=$(unsuitable "$n" "$1" "$2" "$force" 0)
		if [ -z "$why" ]; then
			echo "$DEV/$n"
			return 0
		fi
		say "not $DEV/$n: $why"
	done
	say "no disk can take the image"
	return 1
}

# ddcheck COUNT DD_ARGS...: dd that also fails on a short copy, which dd
# itself does not count as an error.
ddcheck() {
	local c="$1" out
	shift
	out=$(dd "$@" 2>&1) || {
		say "dd $*: $out"
		return 1
	}
	case $out in *"$c+0 records out"*) return 0 ;; esac
	say "dd $*: short copy: $out"
	return 1
}

# write_image DISK DIR: every map line onto DISK, from the parts in DIR.
# The first MiB (partition table) goes last: an install cut short leaves a
# disk whose first MiB is zero, which the next run takes as empty again.
write_image() {
	local disk="$1" dir="$2" first="" first_skip="" part skip seek count sum
	while read -r part skip seek count sum; do
		[ "$part" = speedia-image ] && continue
		if [ "$seek" = 0 ]; then
			first=$part first_skip=$skip
			skip=$((skip + 1)) seek=1 count=$((count - 1))
			[ "$count" = 0 ] && continue
		fi
		say "writing $count MiB at MiB $seek"
		ddcheck "$count" if="$dir/$part" of="$disk" bs=1M skip="$skip" seek="$seek" count="$count" conv=notrunc iflag=fullblock ||
			return 1
	done <"$dir/image.map"
	if [ -n "$first" ]; then
		sync
		say "writing 1 MiB at MiB 0"
		ddcheck 1 if="$dir/$first" of="$disk" bs=1M skip="$first_skip" seek=0 count=1 conv=notrunc iflag=fullblock || return 1
	fi
	sync
}

# wipe_end DISK SIZE_MIB: zeroes the disk's last MiB when it lies beyond the
# image, so no GPT backup header of an earlier install stays behind.
wipe_end() {
	local s
	s=$(sectors "${1#"$DEV"/}")
	[ $((s - 2048)) -ge $(($2 * 2048)) ] || return 0
	ddcheck 2048 if=/dev/zero of="$1" bs=512 seek=$((s - 2048)) count=2048 conv=notrunc && sync
}

# verify_image DISK DIR: reads every written range back from the disk (not
# from the page cache) and checks it against the map's sha256.
verify_image() {
	local disk="$1" dir="$2" part skip seek count sum got
	echo 3 >"$PROC/sys/vm/drop_caches"
	while read -r part skip seek count sum; do
		[ "$part" = speedia-image ] && continue
		got=$(dd if="$disk" bs=1M skip="$seek" count="$count" iflag=fullblock 2>/dev/null | sha256sum)
		if [ "${got%% *}" != "$sum" ]; then
			say "MiB $seek to $((seek + count)) of $disk read back with sha256 ${got%% *}, want $sum"
			return 1
		fi
	done <"$dir/image.map"
}

# now: seconds since boot.
now() {
	local u rest
	read -r u rest <"$PROC/uptime"
	echo "${u%%.*}"
}

# load_modules inserts the initrd's modules in order ("NAME.ko DEP..." per
# line), skipping those whose dependencies failed. Drivers for absent
# hardware (Hyper-V, Xen) fail with ENODEV, which is normal.

load_modules() {
	local m deps d out failed="" absent=""
	[ -f "$MODULES/order" ] || return 0
	while read -r m deps; do
		for d in $deps; do
			case " $failed " in *" $d "*)
				failed="$failed ${m%.ko}"
				continue 2
				;;
			esac
		done
		if ! out=$(insmod "$MODULES/$m" 2>&1); then
			failed="$failed ${m%.ko}"
			case $out in
			*"No such device"*) absent="$absent ${m%.ko}" ;;
			*) say "insmod $m: $out" ;;
			esac
		fi
	done <"$MODULES/order"
	[ -z "$failed" ] || say "modules not loaded:$failed (no such hardware:$absent)"
}

main() {
	/bin/busybox --install -s /bin
	export PATH=/bin
	mkdir -p /proc /sys /dev /run "$MNT"
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	# The active consoles are one line of names: split on blanks on purpose.
	# shellcheck disable=SC2013
	for c in $(cat /sys/class/tty/console/active 2>/dev/null); do
		[ -c "/dev/$c" ] && CONSOLES="$CONSOLES /dev/$c"
	done
	say "starting on $(uname -r)"
	load_modules

	label=$(arg speedia.install.label) || fail "no speedia.install.label= on the kernel command line"
	say "looking for the install medium $label"
	medium=$(find_medium "$label") || fail "no ISO 9660 medium labelled $label after ${WAIT}s (have: $(blockdevs | tr '\n' ' '))"
	mount -t iso9660 -o ro "$medium" "$MNT" || fail "cannot mount $medium"
	dir=$MNT/speedia
	read -r magic version size data sum <"$dir/image.map" || fail "no $dir/image.map on $medium"
	[ "$magic $version" = "speedia-image 1" ] || fail "$dir/image.map: not a version 1 image map"
	say "image: $size MiB, $data MiB of data, sha256 $sum"

	disk=$(choose_disk "$medium" "$size") || fail "no target disk"
	say "installing onto $disk ($(($(sectors "${disk#"$DEV"/}") / 2048)) MiB)"
	t=$(now)
	write_image "$disk" "$dir" || fail "writing $disk"
	wipe_end "$disk" "$size" || fail "zeroing the end of $disk"
	say "wrote $data MiB in $(($(now) - t)) s"
	if [ "$(arg speedia.install.verify)" = 0 ]; then
		say "not verifying (speedia.install.verify=0)"
	else
		t=$(now)
		verify_image "$disk" "$dir" || fail "verifying $disk"
		say "verified $data MiB in $(($(now) - t)) s"
	fi
	umount "$MNT"
	say "done, wrote $data MiB to $disk"
	sync
	poweroff -f
	sleep 60
	fail "poweroff did not power off"
}

[ -n "${SPEEDIA_INSTALL_LIB:-}" ] || main
