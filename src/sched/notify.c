/*
 * notify.c - webhook (libcurl) and command notifications
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/clock.h"
#include "common/dynlib.h"
#include "sched/job.h"
#include "sched/metrics.h"

#define WEBHOOK_ATTEMPTS 4

char *
pv_notify_json(const pv_notify_event *ev)
{
	json_t	   *o = json_object();
	char		host[256] = "";
	char		when[32];
	char	   *text;

	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	json_object_set_new(o, "event", json_string(ev->event));
	json_object_set_new(o, "job", json_string(ev->job));
	json_object_set_new(o, "status", json_string(ev->status));
	json_object_set_new(o, "message", json_string(ev->message ? ev->message : ""));
	json_object_set_new(o, "repository", json_string(ev->repository));
	json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "time", json_string(pv_time_format_utc(ev->time, when, sizeof(when))));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

static size_t
discard(char *ptr, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* One POST: 0 = delivered, 1 = worth retrying, -1 = final failure. */
static int
post_once(const pv_config *cfg, const char *body, pv_err *err)
{
	CURL	   *h;
	struct curl_slist *hdr = NULL;
	CURLcode	cc;
	long		status = 0;
	char		ebuf[CURL_ERROR_SIZE] = "";

	if (pv_dynlib_load(PV_DYNLIB_CURL, err) != 0)
		return -1;
	h = curl_easy_init();

	if (h == NULL)
		return pv_err_set(err, PV_E_FAIL, 0, "could not initialize libcurl");
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, cfg->notify_webhook);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) cfg->notify_webhook_timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	/* the URL may hold a token: messages never show it */
	if (cc != CURLE_OK)
	{
		pv_err_set(err, PV_E_TRANSIENT, 0, "webhook not delivered: %s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
		return cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT ? -1 : 1;
	}
	if (status >= 200 && status < 300)
		return 0;
	pv_err_set(err, PV_E_FAIL, 0, "webhook not delivered: HTTP status %ld", status);
	return status == 429 || status >= 500 ? 1 : -1;
}

int
pv_notify_webhook(const pv_config *cfg, const pv_notify_event *ev, pv_err *err)
{
	char	   *body = pv_notify_json(ev);
	int			rc = 1;

	for (int attempt = 0; attempt < WEBHOOK_ATTEMPTS && rc == 1; attempt++)
	{
		if (attempt > 0)
			sleep(1u << (attempt - 1));	/* 1 s, 2 s, 4 s */
		rc = post_once(cfg, body, err);
	}
	free(body);
	if (rc == 1)
		return pv_err_prefix(err, "after %d attempts", WEBHOOK_ATTEMPTS);
	return rc;
}

int
pv_notify_command(const pv_config *cfg, const pv_notify_event *ev, pv_err *err)
{
	char	   *argv[] = {(char *) "/bin/sh", (char *) "-c", cfg->notify_command, NULL};
	char	   *env[6];
	pv_buf		out;
	int			status;
	int			rc = 0;

	env[0] = pv_asprintf("PGVAULT_EVENT=%s", ev->event);
	env[1] = pv_asprintf("PGVAULT_JOB=%s", ev->job);
	env[2] = pv_asprintf("PGVAULT_STATUS=%s", ev->status);
	env[3] = pv_asprintf("PGVAULT_MESSAGE=%s", ev->message ? ev->message : "");
	env[4] = pv_asprintf("PGVAULT_REPOSITORY=%s", ev->repository);
	env[5] = NULL;
	pv_buf_init(&out);
	if (pv_sched_spawn(argv, env, &out, &status, err) != 0)
		rc = -1;
	else if (status != 0)
	{
		char		line[400];

		pv_sched_last_error(&out, line, sizeof(line));
		rc = pv_err_set(err, PV_E_FAIL, 0, "[notify] command exited with status %d%s%s", status,
						line[0] ? ": " : "", line);
	}
	pv_buf_free(&out);
	for (int i = 0; i < 5; i++)
		free(env[i]);
	return rc;
}
