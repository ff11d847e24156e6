#!/bin/bash
# smp-sim over FunctionFS enumerates on dummy_hcd with exactly the
# descriptors of docs/protocol.md section 1, and tears down cleanly.
. "$SMP_SRC/tests/vm/lib.sh"
plan 27

start_sim --model=2 --event-log="$SMP_OUT/events.log"
dev=$(find_usb_dev 1209 0001)
diag "device at $dev"
attr() { cat "$dev/$1" 2> /dev/null; }

is "$(attr idVendor)" 1209 "idVendor 1209"
is "$(attr idProduct)" 0001 "idProduct 0001"
is "$(attr bcdDevice)" 0210 "bcdDevice 0x0210 (model 2, firmware 1.0)"
is "$(attr version)" " 2.00" "USB 2.0 (bcdUSB)"
is "$(attr manufacturer)" "libsmp project" "manufacturer string"
is "$(attr product)" "SMP-X2" "product string is the model name"
is "$(attr serial)" "SIM-X2-000001" "serial string"
is "$(attr speed)" 480 "high speed (480 Mbit/s)"
is "$(attr bNumConfigurations)" 1 "one configuration"
is "$(attr bmAttributes)" c0 "self-powered configuration"
is "$(attr bNumInterfaces)" " 1" "one interface"

intf="$dev/$(basename "$dev"):1.0"
is "$(cat "$intf/bInterfaceClass" 2> /dev/null)" ff "interface class ff"
is "$(cat "$intf/bInterfaceSubClass" 2> /dev/null)" 53 "interface subclass 53"
is "$(cat "$intf/bInterfaceProtocol" 2> /dev/null)" 01 "interface protocol 01"
is "$(cat "$intf/interface" 2> /dev/null)" "SMP protocol v1" "interface string"
is "$(cat "$intf/bNumEndpoints" 2> /dev/null)" 03 "bNumEndpoints 3"

# Endpoints by type and direction (addresses are the UDC's choice).
bulk_out=() bulk_in=() int_in=() other=()
for ep in "$intf"/ep_*; do
	[ -d "$ep" ] || continue
	key="$(cat "$ep/type") $(cat "$ep/direction")"
	case "$key" in
	"Bulk out") bulk_out+=("$ep") ;;
	"Bulk in") bulk_in+=("$ep") ;;
	"Interrupt in") int_in+=("$ep") ;;
	*) other+=("$ep:$key") ;;
	esac
	diag "endpoint $(cat "$ep/bEndpointAddress") $key wMaxPacketSize $(cat "$ep/wMaxPacketSize") bInterval $(cat "$ep/bInterval")"
done
is "${#bulk_out[@]} ${#bulk_in[@]} ${#int_in[@]} ${#other[@]}" "1 1 1 0" \
	"exactly one bulk OUT, one bulk IN, one interrupt IN endpoint"
is "$(cat "${bulk_out[0]}/wMaxPacketSize" 2> /dev/null)" 0200 "bulk OUT wMaxPacketSize 512"
is "$(cat "${bulk_in[0]}/wMaxPacketSize" 2> /dev/null)" 0200 "bulk IN wMaxPacketSize 512"
is "$(cat "${int_in[0]}/wMaxPacketSize" 2> /dev/null)" 0040 "interrupt IN wMaxPacketSize 64"
is "$(cat "${int_in[0]}/bInterval" 2> /dev/null)" 04 "interrupt IN bInterval 4"
is "$(cat "${int_in[0]}/interval" 2> /dev/null)" 1ms "interrupt IN polled every 1 ms"

# The host enabled the function (configuration set): the sim saw it.
check "sim saw the USB ENABLE (host configured the device)" \
	wait_for 5 grep -q "event=USB_ENABLE" "$SMP_OUT/events.log"

# smp-probe finds the same endpoints through libusb.
"$SMP_BUILD/tools/smp-probe/smp-probe" list > "$SMP_OUT/list.txt" 2>&1
check "smp-probe list finds the device and its serial" grep -q "serial 'SIM-X2-000001'" "$SMP_OUT/list.txt"
sed 's/^/# list: /' "$SMP_OUT/list.txt" >&2

stop_sim
ok $? "smp-sim exits cleanly on SIGTERM"
gone() { ! usb_dev_present 1209 0001; }
check "device gone from the bus after teardown" wait_for 5 gone
check "gadget, function and functionfs mount removed" \
	eval '[ -z "$(ls /sys/kernel/config/usb_gadget)" ] && ! grep -q functionfs /proc/mounts'
