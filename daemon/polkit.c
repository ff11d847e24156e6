/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * polkit.c - asynchronous authorization through
 * org.freedesktop.PolicyKit1.Authority.CheckAuthorization with the
 * caller's system-bus-name.
 *
 * A method handler calls polkit_verify(); the first time it sends the
 * query and returns 0, and the handler returns without replying.  When
 * polkit answers, the handler runs again with the same message and
 * polkit_verify() returns the answer (1 or a negative errno with the
 * error set), so no state changes before authorization.  Anything but a
 * clear "yes" is a "no": polkit absent, an error, a timeout
 * (PolkitTimeoutMs), or the caller gone from the bus meanwhile (H13).
 *
 * Whether the caller is still there is asked after polkit's "yes", and
 * asynchronously too (NameHasOwner, answered by the bus in order after
 * whatever the caller did before): nothing here waits for the bus inside
 * the event loop, whose lease renewals go on meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"

enum auth_state {
	AUTH_PENDING,
	AUTH_CHECKING, /* polkit said yes; is the caller still on the bus? */
	AUTH_ALLOWED,
	AUTH_DENIED
};

struct auth_query {
	struct auth_query *next;
	struct manager *manager;
	sd_bus_message *request;
	char *action;
	sd_bus_slot *slot;
	enum auth_state state;
	char reason[256];
	sd_bus_message_handler_t handler;
	void *userdata;
};

static void query_free(struct auth_query *q)
{
	struct auth_query **pp;

	for (pp = &q->manager->auth_queries; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	sd_bus_slot_unref(q->slot);
	sd_bus_message_unref(q->request);
	free(q->action);
	free(q);
}

/*
 * The request's queries, once the caller turned out to be gone: dropped
 * without changing anything, with the answers the call already had
 * (BeginSession keeps its operate answer while it asks for override).
 */
static void drop_request(struct manager *m, const sd_bus_message *gone)
{
	for (struct auth_query *i = m->auth_queries, *next; i; i = next) {
		next = i->next;
		if (i->request == gone)
			query_free(i);
	}
}

/* Run the method again; this time polkit_verify() answers at once. */
static void rerun(struct auth_query *q)
{
	struct manager *m = q->manager;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *request;
	int r;

	request = sd_bus_message_ref(q->request);
	sd_bus_message_rewind(request, true);
	r = q->handler(request, q->userdata, &error);
	if (r < 0) {
		if (sd_bus_error_is_set(&error))
			sd_bus_reply_method_error(request, &error);
		else
			sd_bus_reply_method_errno(request, r, NULL);
	}
	/*
	 * While the handler waits for another action of the same call, keep
	 * the answers it has (it asks for them again); once nothing is
	 * pending the call is answered and its queries are done.
	 */
	{
		bool pending = false;

		for (struct auth_query *i = m->auth_queries; i; i = i->next)
			if (i->request == request &&
			    (i->state == AUTH_PENDING || i->state == AUTH_CHECKING))
				pending = true;
		for (struct auth_query *i = m->auth_queries, *next; i && !pending; i = next) {
			next = i->next;
			if (i->request == request)
				query_free(i);
		}
	}
	sd_bus_error_free(&error);
	sd_bus_message_unref(request);
}

/* The bus's answer to NameHasOwner: anything but a clear "yes" is gone. */
static int alive_done(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	struct auth_query *q = userdata;
	int has = 0;

	q->slot = sd_bus_slot_unref(q->slot);
	if (sd_bus_message_is_method_error(reply, NULL) ||
	    sd_bus_message_read(reply, "b", &has) < 0 || !has) {
		drop_request(q->manager, q->request);
		return 0;
	}
	q->state = AUTH_ALLOWED;
	rerun(q);
	return 0;
}

static int query_done(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	struct auth_query *q = userdata;
	struct manager *m = q->manager;
	int r, authorized = 0, challenge = 0;

	q->slot = sd_bus_slot_unref(q->slot);
	if (sd_bus_message_is_method_error(reply, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(reply);

		snprintf(q->reason, sizeof(q->reason), "polkit did not answer: %s",
			 e && e->message ? e->message :
			 e && e->name	 ? e->name :
					   "error");
		q->state = AUTH_DENIED;
	} else {
		r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
		if (r >= 0)
			r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
		if (r < 0) {
			snprintf(q->reason, sizeof(q->reason), "malformed answer from polkit");
			q->state = AUTH_DENIED;
		} else if (authorized) {
			q->state = AUTH_ALLOWED;
		} else {
			snprintf(q->reason, sizeof(q->reason), "%s is not authorized for %s%s",
				 sd_bus_message_get_sender(q->request), q->action,
				 challenge ? " (authentication required)" : "");
			q->state = AUTH_DENIED;
		}
	}
	{
		/* Every decision is recorded; the state change that follows an
		 * allowed one syncs it with its own record (group commit). */
		struct audit_field f[] = {
			AUDIT_STR("who", sd_bus_message_get_sender(q->request)),
			AUDIT_STR("action", q->action),
			AUDIT_STR("method", sd_bus_message_get_member(q->request)),
			AUDIT_STR("object", sd_bus_message_get_path(q->request)),
			AUDIT_BOOL("allowed", q->state == AUTH_ALLOWED),
			AUDIT_STR("reason", q->state == AUTH_ALLOWED ? "" : q->reason),
		};
		manager_audit(m, false, "authorization", f, sizeof(f) / sizeof(f[0]));
	}
	if (q->state != AUTH_ALLOWED) {
		rerun(q); /* the handler answers with the refusal */
		return 0;
	}
	/* Is there still someone to act for?  Asked without waiting. */
	q->state = AUTH_CHECKING;
	r = sd_bus_call_method_async(m->bus, &q->slot, "org.freedesktop.DBus",
				     "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
				     alive_done, q, "s", sd_bus_message_get_sender(q->request));
	if (r < 0)
		drop_request(m, q->request); /* nobody can tell: nothing is done */
	return 0;
}

int polkit_verify(struct manager *m, sd_bus_message *call, const char *action,
		  sd_bus_message_handler_t handler, void *userdata, sd_bus_error *error)
{
	struct auth_query *q;
	sd_bus_message *msg = NULL;
	const char *sender = sd_bus_message_get_sender(call);
	int r;

	for (q = m->auth_queries; q; q = q->next) {
		if (q->request != call || strcmp(q->action, action) != 0)
			continue;
		if (q->state == AUTH_PENDING || q->state == AUTH_CHECKING)
			return 0; /* a duplicate run while waiting */
		if (q->state == AUTH_ALLOWED)
			return 1; /* freed by query_done() after the handler */
		return sd_bus_error_setf(error, SMPD_ERROR_NOT_AUTHORIZED, "%s", q->reason);
	}

	if (!sender)
		return sd_bus_error_setf(error, SMPD_ERROR_NOT_AUTHORIZED,
					 "the caller has no bus name");

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->manager = m;
	q->request = sd_bus_message_ref(call);
	q->action = strdup(action);
	q->handler = handler;
	q->userdata = userdata;
	if (!q->action) {
		sd_bus_message_unref(q->request);
		free(q);
		return -ENOMEM;
	}
	q->next = m->auth_queries;
	m->auth_queries = q;

	r = sd_bus_message_new_method_call(m->bus, &msg, "org.freedesktop.PolicyKit1",
					   "/org/freedesktop/PolicyKit1/Authority",
					   "org.freedesktop.PolicyKit1.Authority",
					   "CheckAuthorization");
	if (r >= 0)
		r = sd_bus_message_append(msg, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name",
					  "s", sender, action, 0,
					  (uint32_t)(sd_bus_message_get_allow_interactive_authorization(
							     call) ?
							     1 :
							     0),
					  "");
	if (r >= 0)
		r = sd_bus_call_async(m->bus, &q->slot, msg, query_done, q,
				      (uint64_t)m->policy.polkit_timeout_ms.value * 1000);
	sd_bus_message_unref(msg);
	if (r < 0) {
		query_free(q);
		return sd_bus_error_setf(error, SMPD_ERROR_NOT_AUTHORIZED, "cannot ask polkit: %s",
					 strerror(-r));
	}
	return 0;
}

void polkit_cancel_userdata(struct manager *m, const void *userdata)
{
	for (struct auth_query *i = m->auth_queries, *next; i; i = next) {
		next = i->next;
		if (i->userdata != userdata)
			continue;
		if (i->state == AUTH_PENDING || i->state == AUTH_CHECKING)
			sd_bus_reply_method_errorf(i->request, SMPD_ERROR_DEVICE_ERROR,
						   "the object went away during authorization");
		query_free(i);
	}
}

void polkit_free_all(struct manager *m)
{
	while (m->auth_queries) {
		struct auth_query *q = m->auth_queries;

		m->auth_queries = q->next; /* unlinked here, so query_free() only frees */
		query_free(q);
	}
}
