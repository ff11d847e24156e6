/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Analysis shim: the part of OpenSSL's <openssl/evp.h> daemon/safety.c
 * uses (smpd_message_id(), outside the proofs). */
#ifndef PROOFS_OPENSSL_EVP_H
#define PROOFS_OPENSSL_EVP_H
#include <stddef.h>
#define EVP_MAX_MD_SIZE 64
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
const EVP_MD *EVP_sha256(void);
int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size,
	       const EVP_MD *type, ENGINE *impl);
#endif
