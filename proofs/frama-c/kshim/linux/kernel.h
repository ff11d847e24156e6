/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: nothing smpusb_core.c needs beyond <linux/minmax.h>. */
#include <linux/minmax.h>
