/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Compiled with -std=c99 -pedantic -Werror: the public header must be plain C99. */
#include <libsmp.h>

int main(void)
{
	smp_client *c = NULL;
	enum smp_param p = SMP_PARAM_DEPTH;
	uint32_t keep = SMP_KEEP;

	(void)p;
	(void)keep;
	c = smp_client_unref(c);
	return c == NULL ? 0 : 1;
}
