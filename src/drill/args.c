/*
 * args.c - command lines of the drill's children: the restore, the scratch
 * server and its bubblewrap sandbox
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_int.h"

void
pv_argv_init(pv_argv *a)
{
	a->cap = 16;
	a->n = 0;
	a->v = pv_calloc(a->cap, sizeof(char *));
}

void
pv_argv_add(pv_argv *a, const char *s)
{
	if (a->n + 2 > a->cap)
	{
		a->cap *= 2;
		a->v = pv_realloc(a->v, a->cap * sizeof(char *));
	}
	a->v[a->n++] = pv_strdup(s);
	a->v[a->n] = NULL;
}

void
pv_argv_addf(pv_argv *a, const char *fmt,...)
{
	va_list		ap;
	char	   *s;

	va_start(ap, fmt);
	s = pv_vasprintf(fmt, ap);
	va_end(ap);
	pv_argv_add(a, s);
	free(s);
}

void
pv_argv_free(pv_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

char *
pv_argv_join(const pv_argv *a)
{
	pv_buf		b;

	pv_buf_init(&b);
	for (size_t i = 0; i < a->n; i++)
	{
		const char *w = a->v[i];

		if (i > 0)
			pv_buf_append_str(&b, " ");
		if (w[0] != '\0' && strpbrk(w, " \t\n'\"\\$`;&|<>()*?") == NULL)
			pv_buf_append_str(&b, w);
		else
		{
			pv_buf_append_str(&b, "'");
			for (const char *p = w; *p; p++)
				pv_buf_append_str(&b, *p == '\'' ? "'\\''" : (char[]) {*p, '\0'});
			pv_buf_append_str(&b, "'");
		}
	}
	if (b.len == 0)
		pv_buf_append_str(&b, "");
	return (char *) pv_buf_steal(&b, NULL);
}

void
pv_drill_restore_argv(const pv_drill_restore_args *r, pv_argv *out)
{
	pv_argv_add(out, r->pgvault);
	if (r->config != NULL)
	{
		pv_argv_add(out, "-c");
		pv_argv_add(out, r->config);
	}
	for (int i = 0; i < r->verbose && i < 2; i++)
		pv_argv_add(out, "-v");
	pv_argv_add(out, "restore");
	pv_argv_add(out, "--target");
	pv_argv_add(out, r->target_dir);
	pv_argv_add(out, "--backup");
	pv_argv_add(out, r->backup_id);
	if (r->to_time != NULL)
	{
		pv_argv_add(out, "--to-time");
		pv_argv_add(out, r->to_time);
		pv_argv_add(out, "--target-action");
		pv_argv_add(out, "promote");
	}
	else
		pv_argv_add(out, "--latest");	/* recovery ends (and promotes) at the end of the WAL */
	pv_argv_add(out, "--no-archive");
	for (size_t i = 0; i < r->nts; i++)
	{
		pv_argv_add(out, "--tablespace-map");
		pv_argv_addf(out, "%u=%s", r->ts[i].oid, r->ts[i].dir);
	}
	if (r->owner != NULL)
	{
		pv_argv_add(out, "--owner");
		pv_argv_add(out, r->owner);
	}
}

void
pv_drill_bwrap_args(const char *bwrap, const char *scratch, const char *chdir_to, pv_argv *out)
{
	pv_argv_add(out, bwrap);
	/* own network (only a loopback of its own), PID, IPC and UTS namespaces */
	pv_argv_add(out, "--unshare-net");
	pv_argv_add(out, "--unshare-pid");
	pv_argv_add(out, "--unshare-ipc");
	pv_argv_add(out, "--unshare-uts");
	pv_argv_add(out, "--die-with-parent");
	pv_argv_add(out, "--new-session");
	/* the host read-only; no /tmp or /run (other servers' sockets live there) */
	pv_argv_add(out, "--ro-bind");
	pv_argv_add(out, "/");
	pv_argv_add(out, "/");
	pv_argv_add(out, "--dev");
	pv_argv_add(out, "/dev");
	pv_argv_add(out, "--proc");
	pv_argv_add(out, "/proc");
	pv_argv_add(out, "--tmpfs");
	pv_argv_add(out, "/tmp");
	pv_argv_add(out, "--tmpfs");
	pv_argv_add(out, "/run");
	pv_argv_add(out, "--tmpfs");
	pv_argv_add(out, "/var/tmp");
	/* the scratch directory is the only writable place */
	pv_argv_add(out, "--bind");
	pv_argv_add(out, scratch);
	pv_argv_add(out, scratch);
	pv_argv_add(out, "--chdir");
	pv_argv_add(out, chdir_to);
	pv_argv_add(out, "--");
}

static void
setting(pv_argv *out, const char *name, const char *value)
{
	pv_argv_add(out, "-c");
	pv_argv_addf(out, "%s=%s", name, value);
}

void
pv_drill_server_argv(const pv_drill_server_args *s, pv_argv *out)
{
	char		port[16];

	if (s->bwrap != NULL)
		pv_drill_bwrap_args(s->bwrap, s->scratch, s->datadir, out);
	snprintf(port, sizeof(port), "%d", s->port);
	pv_argv_add(out, s->postgres);
	pv_argv_add(out, "-D");
	pv_argv_add(out, s->datadir);
	/* whatever the restored configuration says: this directory, no TCP, our socket */
	setting(out, "data_directory", s->datadir);
	setting(out, "listen_addresses", "");
	setting(out, "port", port);
	setting(out, "unix_socket_directories", s->sockdir);
	setting(out, "unix_socket_permissions", "0700");
	setting(out, "hba_file", s->hba_file);
	setting(out, "ident_file", s->ident_file);
	setting(out, "external_pid_file", "");
	setting(out, "ssl", "off");
	/* never archive, never replicate, never wait for a standby */
	setting(out, "archive_mode", "off");
	setting(out, "archive_command", "");
	setting(out, "archive_cleanup_command", "");
	setting(out, "recovery_end_command", "");
	setting(out, "primary_conninfo", "");
	setting(out, "primary_slot_name", "");
	setting(out, "synchronous_standby_names", "");
	/* recovery: WAL from the drill's spool, promote at the target, no hot standby */
	setting(out, "restore_command", s->restore_command);
	setting(out, "recovery_target_action", "promote");
	setting(out, "hot_standby", "off");
	setting(out, "recovery_min_apply_delay", "0");	/* a delayed standby's configuration */
	/* small */
	setting(out, "shared_buffers", "32MB");
	setting(out, "max_connections", "20");
	setting(out, "maintenance_work_mem", "16MB");
	setting(out, "work_mem", "4MB");
	setting(out, "effective_cache_size", "128MB");
	setting(out, "huge_pages", "off");
	/* its log goes to stderr, which the drill keeps */
	setting(out, "logging_collector", "off");
	setting(out, "log_destination", "stderr");
	setting(out, "cluster_name", "pgvault-drill");
}
