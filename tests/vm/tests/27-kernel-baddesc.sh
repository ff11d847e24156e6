#!/bin/bash
# A device that lies about its descriptors is refused at probe (H14) with a
# clear message, and no /dev/smpusbN appears.  The test presents its own
# FunctionFS gadgets with the protocol's identity (1209:0001, ff/53/01) but
# broken endpoint layouts.
. "$SMP_SRC/tests/vm/lib.sh"
plan 13
ko="$SMP_VM_KO"
vm_insmod "$ko" timeout_ms=1000
trap '[ -d "$g" ] && remove > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT

g=/sys/kernel/config/usb_gadget/smpbad
ffs=/tmp/ffs-smpbad
udc=$(ls /sys/class/udc | head -n1)
[ -n "$udc" ] || bail "no UDC"

# FunctionFS writer: descriptors for VARIANT, then hold ep0 open.
cat > "$SMP_OUT/badgadget.py" <<'PY'
import os, struct, sys, time
ffs, variant = sys.argv[1], sys.argv[2]
def ep(addr, attr, maxp, interval=0):
    return struct.pack('<BBBBHB', 7, 5, addr, attr, maxp, interval)
BO, BI, II, IO = (0x02, 2), (0x81, 2), (0x83, 3), (0x04, 3)
layouts = {
    'no-interrupt': [BO + (512,), BI + (512,)],
    'two-bulk-in':  [BO + (512,), BI + (512,), (0x85, 2, 512), II + (64, 4)],
    'small-interrupt': [BO + (512,), BI + (512,), II + (16, 4)],
    'interrupt-out': [BO + (512,), BI + (512,), II + (64, 4), IO + (64, 4)],
}
eps = layouts[variant]
def block(full):
    d = struct.pack('<BBBBBBBBB', 9, 4, 0, 0, len(eps), 0xff, 0x53, 0x01, 1)
    for a, t, m, *i in eps:
        d += ep(a, t, m if full else min(m, 64), i[0] if i else 0)
    return d
fs, hs = block(False), block(True)
n = 1 + len(eps)
body = struct.pack('<III', 1 | 2, n, n) + fs + hs
s = b'SMP protocol v1\0'
fd = os.open(ffs + '/ep0', os.O_RDWR)
os.write(fd, struct.pack('<II', 3, 8 + len(body)) + body)
os.write(fd, struct.pack('<IIIIH', 2, 18 + len(s), 1, 1, 0x0409) + s)
open(ffs + '.ready', 'w').close()
while True:
    try:
        os.read(fd, 64)
    except OSError:
        time.sleep(0.1)
PY

present() {
	local variant="$1"
	mkdir -p $g/strings/0x409 $g/configs/c.1/strings/0x409 $g/functions/ffs.bad
	echo 0x1209 > $g/idVendor
	echo 0x0001 > $g/idProduct
	echo 0x0210 > $g/bcdDevice
	echo "libsmp project" > $g/strings/0x409/manufacturer
	echo "SMP-X2" > $g/strings/0x409/product
	echo "BAD-$variant" > $g/strings/0x409/serialnumber
	echo c > $g/configs/c.1/strings/0x409/configuration
	ln -s $g/functions/ffs.bad $g/configs/c.1/
	mkdir -p $ffs
	mount -t functionfs bad $ffs
	rm -f $ffs.ready
	/usr/bin/python3 "$SMP_OUT/badgadget.py" $ffs "$variant" 2>> "$SMP_OUT/badgadget.log" &
	pypid=$!
	wait_for 10 test -f $ffs.ready || bail "$variant: FunctionFS gadget not ready"
	echo "$udc" > $g/UDC
	wait_for 20 find_usb_dev 1209 0001 > /dev/null || bail "$variant: gadget did not enumerate"
}

remove() {
	echo "" > $g/UDC
	kill $pypid
	wait $pypid 2> /dev/null
	umount $ffs
	rm -f $g/configs/c.1/ffs.bad
	rmdir $g/configs/c.1/strings/0x409 $g/configs/c.1 $g/functions/ffs.bad \
		$g/strings/0x409 $g
	wait_for 10 eval '! find_usb_dev 1209 0001 > /dev/null'
}

# refused VARIANT MESSAGE
refused() {
	local n want="$2"
	n=$(dmesg | grep -c 'smpusb .*refused')
	present "$1"
	wait_for 10 eval 'test "$(dmesg | grep -c "smpusb .*refused")" -gt $n'
	dmesg | grep 'smpusb .*refused' | tail -n1 | sed "s/^/# $1: /" >&2
	check "$1: probe refuses it: '$2'" \
		eval 'dmesg | grep "smpusb .*refused" | tail -n1 | grep -q "$want"'
	check "$1: no /dev/smpusbN" eval '! ls /dev/smpusb* > /dev/null 2>&1'
	check "$1: interface not bound to smpusb" \
		eval '! ls -d /sys/bus/usb/drivers/smpusb/*:1.0 > /dev/null 2>&1'
	remove
}

refused no-interrupt "needs one bulk IN, one bulk OUT and one interrupt IN endpoint"
refused two-bulk-in "more than one endpoint of a kind"
refused small-interrupt "interrupt wMaxPacketSize 16, needs 64"
refused interrupt-out "more than one endpoint of a kind"
rmmod smpusb
ok $? "rmmod smpusb"
