/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: the errno values (only their being constants matters). */
#include <errno.h>
