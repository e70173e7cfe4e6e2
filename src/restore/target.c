/*
 * target.c - recovery targets and the recovery settings block
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/lsn.h"
#include "restore/restore.h"

/* ------------------------------------------------------------ time */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe;
	unsigned	doy;
	unsigned	doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t) doe - 719468;
}

static bool
leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Read exactly n digits. */
static bool
digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) (*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* The zone part: Z, UTC, GMT, +HH, +HHMM, +HH:MM (offset in seconds east). */
static bool
parse_zone(const char *p, int *offset)
{
	int			sign;
	int			hh;
	int			mm = 0;

	while (*p == ' ')
		p++;
	if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || strcmp(p, "UTC") == 0 || strcmp(p, "GMT") == 0)
	{
		*offset = 0;
		return true;
	}
	if (*p != '+' && *p != '-')
		return false;
	sign = *p++ == '-' ? -1 : 1;
	if (!digits(&p, 2, &hh))
		return false;
	if (*p == ':')
		p++;
	if (*p != '\0' && !digits(&p, 2, &mm))
		return false;
	if (*p != '\0' || hh > 15 || mm > 59)
		return false;
	*offset = sign * (hh * 3600 + mm * 60);
	return true;
}

int
pv_target_parse_time(const char *s, int64_t *time_us, pv_err *err)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s;
	int			y,
				mo,
				d,
				h,
				mi,
				sec = 0;
	int64_t		frac_us = 0;
	int			offset;

	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d) ||
		(*p != ' ' && *p != 'T') || (p++, !digits(&p, 2, &h)) || *p++ != ':' || !digits(&p, 2, &mi))
		goto bad;
	if (*p == ':')
	{
		p++;
		if (!digits(&p, 2, &sec))
			goto bad;
		if (*p == '.')
		{
			int			n = 0;

			p++;
			if (!isdigit((unsigned char) *p))
				goto bad;
			for (; isdigit((unsigned char) *p); p++, n++)
				if (n < 6)
					frac_us = frac_us * 10 + (*p - '0');
			for (; n < 6; n++)
				frac_us *= 10;
		}
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
		d > mdays[mo - 1] + (mo == 2 && leap_year(y)) || h > 23 || mi > 59 || sec > 59)
		return pv_err_set(err, PV_E_USAGE, 0, "\"%s\" is not a valid date and time", s);
	if (*p == '\0')
	{
		pv_err_set(err, PV_E_USAGE, 0, "time \"%s\" has no time zone", s);
		return pv_err_hint(err, "add the zone, e.g. \"%s+00\" for UTC or \"%s+01:00\": a time without a zone is ambiguous", s, s);
	}
	if (!parse_zone(p, &offset))
	{
		pv_err_set(err, PV_E_USAGE, 0, "time \"%s\": cannot read the zone \"%s\"", s, p);
		return pv_err_hint(err, "use Z, UTC or a numeric offset such as +01, +0530 or -08:00");
	}
	*time_us = ((days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400 + h * 3600 + mi * 60 + sec) - offset)
		* INT64_C(1000000) + frac_us;
	return 0;
bad:
	pv_err_set(err, PV_E_USAGE, 0, "\"%s\" is not a timestamp", s);
	return pv_err_hint(err, "write it like \"2026-11-23 14:05:00+01\" (date, time, zone; seconds and fractions optional)");
}

void
pv_target_format_time(int64_t time_us, char *buf, size_t len)
{
	struct tm	tm;
	int64_t		frac = pv_time_us_utc(time_us, &tm);
	char		base[32];

	strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
	if (frac == 0)
		snprintf(buf, len, "%s+00", base);
	else
	{
		char		f[8];
		int			n;

		snprintf(f, sizeof(f), "%06" PRId64, frac);
		for (n = 6; n > 1 && f[n - 1] == '0'; n--)
			;
		f[n] = '\0';
		snprintf(buf, len, "%s.%s+00", base, f);
	}
}

/* ------------------------------------------------------------ xid, name */

int
pv_target_parse_xid(const char *s, uint64_t *xid, pv_err *err)
{
	char	   *end;
	unsigned long long v;

	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 20)
		return pv_err_set(err, PV_E_USAGE, 0, "\"%s\" is not a transaction id (a decimal number)", s);
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v < 3)
		return pv_err_set(err, PV_E_USAGE, 0, "\"%s\" is not a normal transaction id (3 or more)", s);
	*xid = v;
	return 0;
}

int
pv_target_check_name(const char *s, pv_err *err)
{
	size_t		n = strlen(s);

	if (n == 0)
		return pv_err_set(err, PV_E_USAGE, 0, "the restore point name is empty");
	if (n > PV_RESTORE_POINT_MAX)
		return pv_err_set(err, PV_E_USAGE, 0, "restore point name \"%s\" is longer than %d bytes",
						  s, PV_RESTORE_POINT_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			return pv_err_set(err, PV_E_USAGE, 0, "restore point name has a control character");
	return 0;
}

const char *
pv_target_kind_name(pv_target_kind kind)
{
	switch (kind)
	{
		case PV_TARGET_LATEST:
			return "latest";
		case PV_TARGET_IMMEDIATE:
			return "immediate";
		case PV_TARGET_TIME:
			return "time";
		case PV_TARGET_LSN:
			return "lsn";
		case PV_TARGET_XID:
			return "xid";
		case PV_TARGET_NAME:
			return "name";
	}
	return "?";
}

void
pv_target_describe(const pv_recovery_target *t, char *buf, size_t len)
{
	char		v[64];

	switch (t->kind)
	{
		case PV_TARGET_LATEST:
			snprintf(buf, len, "the end of the archived WAL (--latest)");
			break;
		case PV_TARGET_IMMEDIATE:
			snprintf(buf, len, "the end of the backup (--immediate)");
			break;
		case PV_TARGET_TIME:
			pv_target_format_time(t->time_us, v, sizeof(v));
			snprintf(buf, len, "time %s", v);
			break;
		case PV_TARGET_LSN:
			pv_lsn_format(t->lsn, v, sizeof(v));
			snprintf(buf, len, "LSN %s", v);
			break;
		case PV_TARGET_XID:
			snprintf(buf, len, "transaction %" PRIu64, t->xid);
			break;
		case PV_TARGET_NAME:
			snprintf(buf, len, "restore point \"%s\"", t->name);
			break;
	}
}

/* ------------------------------------------------------------ quoting */

char *
pv_guc_quote(const char *value)
{
	pv_buf		b;

	pv_buf_init(&b);
	pv_buf_append_str(&b, "'");
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'')
			pv_buf_append_str(&b, "''");
		else if (*p == '\\')
			pv_buf_append_str(&b, "\\\\");
		else
			pv_buf_append(&b, p, 1);
	}
	pv_buf_append_str(&b, "'");
	return (char *) pv_buf_steal(&b, NULL);
}

char *
pv_shell_quote(const char *word)
{
	pv_buf		b;

	if (word[0] != '\0' &&
		strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.,:@%+=-") == strlen(word))
		return pv_strdup(word);
	pv_buf_init(&b);
	pv_buf_append_str(&b, "'");
	for (const char *p = word; *p; p++)
	{
		if (*p == '\'')
			pv_buf_append_str(&b, "'\\''");
		else
			pv_buf_append(&b, p, 1);
	}
	pv_buf_append_str(&b, "'");
	return (char *) pv_buf_steal(&b, NULL);
}

/* ------------------------------------------------------------ the block */

static void
setting(pv_buf *b, const char *name, const char *value)
{
	char	   *q = pv_guc_quote(value);

	pv_buf_printf(b, "%s = %s\n", name, q);
	free(q);
}

char *
pv_recovery_block(const pv_restore_opts *opts, const char *backup_id, int64_t now)
{
	static const char *const kinds[] = {
		"recovery_target", "recovery_target_lsn", "recovery_target_name",
		"recovery_target_time", "recovery_target_xid"
	};
	const pv_recovery_target *t = &opts->target;
	const char *mine = NULL;
	char		value[64] = "";
	char		date[64];
	pv_buf		b;

	pv_target_format_time(now * 1000000, date, sizeof(date));
	switch (t->kind)
	{
		case PV_TARGET_LATEST:
			break;
		case PV_TARGET_IMMEDIATE:
			mine = "recovery_target";
			snprintf(value, sizeof(value), "immediate");
			break;
		case PV_TARGET_TIME:
			mine = "recovery_target_time";
			pv_target_format_time(t->time_us, value, sizeof(value));
			break;
		case PV_TARGET_LSN:
			mine = "recovery_target_lsn";
			pv_lsn_format(t->lsn, value, sizeof(value));
			break;
		case PV_TARGET_XID:
			mine = "recovery_target_xid";
			snprintf(value, sizeof(value), "%" PRIu64, t->xid);
			break;
		case PV_TARGET_NAME:
			mine = "recovery_target_name";
			break;
	}
	pv_buf_init(&b);
	pv_buf_printf(&b, "%s (%s, %s)\n", PV_RECOVERY_BLOCK_BEGIN, backup_id, date);
	pv_buf_append_str(&b,
					  "# Written by \"pgvault restore\", which replaces this block when it restores\n"
					  "# here again. Remove it (or ALTER SYSTEM RESET these settings) once the\n"
					  "# server has been promoted.\n");
	setting(&b, "restore_command", opts->restore_command);
	/*
	 * Empty every other target setting first (an older one left in this file
	 * would make PostgreSQL stop with "multiple recovery targets specified"),
	 * then set ours: PostgreSQL applies the settings in this order.
	 */
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (mine == NULL || strcmp(kinds[i], mine) != 0)
			setting(&b, kinds[i], "");
	if (t->kind == PV_TARGET_NAME)
		setting(&b, mine, t->name);
	else if (mine != NULL)
		setting(&b, mine, value);
	if (mine != NULL && t->kind != PV_TARGET_IMMEDIATE)
		setting(&b, "recovery_target_inclusive", "on");
	if (t->timeline == 0)
		setting(&b, "recovery_target_timeline", "latest");
	else
	{
		snprintf(value, sizeof(value), "%u", t->timeline);
		setting(&b, "recovery_target_timeline", value);
	}
	if (mine != NULL)
	{
		const char *a = "pause";

		if (t->action == PV_ACTION_PROMOTE)
			a = "promote";
		else if (t->action == PV_ACTION_SHUTDOWN)
			a = "shutdown";
		setting(&b, "recovery_target_action", a);
	}
	if (opts->no_archive)
		setting(&b, "archive_mode", "off");
	pv_buf_printf(&b, "%s\n", PV_RECOVERY_BLOCK_END);
	return (char *) pv_buf_steal(&b, NULL);
}

/* Does the line starting at p (length n) start with marker? */
static bool
line_is(const char *p, size_t n, const char *marker)
{
	size_t		m = strlen(marker);

	return n >= m && strncmp(p, marker, m) == 0;
}

int
pv_recovery_conf_merge(const char *old, size_t len, const char *block, char **out, pv_err *err)
{
	pv_buf		b;
	bool		inside = false;
	size_t		pos = 0;

	pv_buf_init(&b);
	if (old == NULL || len == 0)
		pv_buf_append_str(&b, "# Do not edit this file manually!\n"
						  "# It will be overwritten by the ALTER SYSTEM command.\n");
	while (old != NULL && pos < len)
	{
		const char *line = old + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t		n = nl ? (size_t) (nl - line) + 1 : len - pos;

		if (!inside && line_is(line, n, PV_RECOVERY_BLOCK_BEGIN))
			inside = true;
		else if (inside && line_is(line, n, PV_RECOVERY_BLOCK_END))
			inside = false;
		else if (!inside)
		{
			pv_buf_append(&b, line, n);
			if (nl == NULL)
				pv_buf_append_str(&b, "\n");
		}
		pos += n;
	}
	if (inside)
	{
		pv_buf_free(&b);
		pv_err_set(err, PV_E_FAIL, 0, "postgresql.auto.conf has a \"%s\" line without \"%s\"",
				   PV_RECOVERY_BLOCK_BEGIN, PV_RECOVERY_BLOCK_END);
		return pv_err_hint(err, "the file was edited by hand: remove the incomplete pgvault block and restore again");
	}
	pv_buf_append_str(&b, block);
	*out = (char *) pv_buf_steal(&b, NULL);
	return 0;
}
