/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.h - what the interlocks must remember across restarts (H8, H9):
 * every cartridge ID used in a session and the last session time per
 * client pseudonym.  Two append-only text files in the state directory,
 * each line written with O_APPEND and fdatasync()ed before the call
 * returns; the newest line for a key wins when loading.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct store;

/* Load (or create) state_dir/cartridges and state_dir/clients. */
int store_open(const char *state_dir, struct store **ret);
void store_free(struct store *s);

bool store_cartridge_used(const struct store *s, const char *id);
/* Durably record that cartridge id was used in session. */
int store_mark_cartridge(struct store *s, const char *id, const char *session, int64_t when);

/* Unix time of the client's last session, 0 if none. */
int64_t store_last_session(const struct store *s, const char *client);
int store_record_session(struct store *s, const char *client, int64_t when);
