// SPDX-License-Identifier: LGPL-2.1-or-later
// Compiled with g++ -pedantic -Werror: the public header must work from C++.
#include <libsmp.h>

static void handler(smp_client *, const smp_event *ev, void *)
{
	(void)smp_event_get_type(ev);
}

int main()
{
	smp_client *c = nullptr;
	smp_event_handler h = handler;
	(void)h;
	c = smp_client_unref(c);
	return c == nullptr ? 0 : 1;
}
