/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Analysis shim: the generated smp-mutation.h of a normal build, no
 * SMP_MUTATION_* defined (the proofs are of the code that ships). */
#pragma once
#define SMP_MUTATION "none"
