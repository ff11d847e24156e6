/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scope-bound release of resources, the userspace convention of this
 * project (docs/hacking.md, "Conventions").  A variable declared
 *
 *	_cleanup_free_ char *path = NULL;
 *
 * is freed when it goes out of scope, on every return path, so an error
 * path is a plain "return r;" instead of a "goto out" chain.  To hand the
 * resource to the caller, clear the variable after copying it out
 * ("*ret = path; path = NULL;").  The attribute is a GCC and Clang
 * extension that both compilers accept in C11 mode.
 *
 * Header only: any target may include it (common/ is on the include path
 * of everything that links smp-common or the audit library).
 */
#pragma once

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void smp_freep(void *p)
{
	free(*(void **)p);
}

static inline void smp_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void smp_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void smp_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* A NULL-terminated array of strings and the strings in it. */
static inline void smp_strv_freep(char ***strv)
{
	if (!*strv)
		return;
	for (char **s = *strv; *s; s++)
		free(*s);
	free(*strv);
}

#define _cleanup_free_ _cleanup_(smp_freep)
#define _cleanup_close_ _cleanup_(smp_closep)
#define _cleanup_fclose_ _cleanup_(smp_fclosep)
#define _cleanup_closedir_ _cleanup_(smp_closedirp)
#define _cleanup_strv_free_ _cleanup_(smp_strv_freep)
