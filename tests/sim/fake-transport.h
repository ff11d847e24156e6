/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-transport.h - a transport for the core unit tests: captures every
 * reply and telemetry frame the firmware sends, can refuse telemetry
 * (-EAGAIN) and records connect/disconnect calls.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define FAKE_REPLIES_MAX 64
#define FAKE_TEL_MAX 8192

struct fake_reply {
	uint8_t buf[SMPP_MAX_FRAME];
	size_t len;
};

struct fake {
	struct sim_transport t;
	struct fake_reply replies[FAKE_REPLIES_MAX]; /* ring of the newest */
	size_t n_replies;			     /* total */
	/* Decoded telemetry, a ring of the newest FAKE_TEL_MAX records. */
	struct smp_telemetry *tel;
	size_t n_tel;	  /* total accepted */
	size_t n_tel_bad; /* frames that failed to decode */
	bool tel_refuse;  /* answer -EAGAIN */
	int connected;	  /* last set_connected(), -1 never called */
	unsigned set_connected_calls;
};

static inline struct fake *fake_of(struct sim_transport *t)
{
	return (struct fake *)t;
}

static inline int fake_send_reply(struct sim_transport *t, const uint8_t *buf, size_t len)
{
	struct fake *f = fake_of(t);

	struct fake_reply *r = &f->replies[f->n_replies % FAKE_REPLIES_MAX];

	if (len > SMPP_MAX_FRAME)
		return -EMSGSIZE;
	memcpy(r->buf, buf, len);
	r->len = len;
	f->n_replies++;
	return 0;
}

static inline int fake_send_telemetry(struct sim_transport *t, const uint8_t *buf, size_t len)
{
	struct fake *f = fake_of(t);
	struct smp_telemetry rec;

	if (f->tel_refuse)
		return -EAGAIN;
	/* Zero padding too: tests compare whole records. */
	memset(&rec, 0, sizeof(rec));
	if (smp_telemetry_frame_decode(buf, len, &rec) < 0 || len != SMPP_TELEMETRY_FRAME_SIZE) {
		f->n_tel_bad++;
		return 0;
	}
	f->tel[f->n_tel % FAKE_TEL_MAX] = rec;
	f->n_tel++;
	return 0;
}

static inline int fake_set_connected(struct sim_transport *t, bool connected)
{
	struct fake *f = fake_of(t);

	f->connected = connected;
	f->set_connected_calls++;
	return 0;
}

static inline void fake_free(struct sim_transport *t)
{
	struct fake *f = fake_of(t);

	free(f->tel);
	free(f);
}

static const struct sim_transport_ops fake_ops = {
	.send_reply = fake_send_reply,
	.send_telemetry = fake_send_telemetry,
	.set_connected = fake_set_connected,
	.free = fake_free,
};

static inline struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->tel = calloc(FAKE_TEL_MAX, sizeof(*f->tel));
	if (!f->tel)
		abort();
	f->t.ops = &fake_ops;
	f->t.name = "fake";
	f->connected = -1;
	return f;
}

/* Reply number i (counting from 0 since creation; one of the newest 64). */
static inline const struct fake_reply *fake_reply(const struct fake *f, size_t i)
{
	return &f->replies[i % FAKE_REPLIES_MAX];
}

/* The newest telemetry record (the test must know one exists). */
static inline const struct smp_telemetry *fake_last_tel(const struct fake *f)
{
	return &f->tel[(f->n_tel - 1) % FAKE_TEL_MAX];
}
