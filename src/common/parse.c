/*
 * parse.c - strict value parsing and formatting
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/parse.h"

/* Parse the leading unsigned decimal number; returns pointer past it or NULL. */
static const char *
parse_u64(const char *s, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	while (isspace((unsigned char) *s))
		s++;
	if (!isdigit((unsigned char) *s))
		return NULL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return NULL;
	*out = v;
	while (isspace((unsigned char) *end))
		end++;
	return end;
}

static bool
mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b != 0 && a > UINT64_MAX / b)
		return false;
	*out = a * b;
	return true;
}

int
pv_parse_size(const char *s, uint64_t *out, pv_err *err)
{
	static const struct
	{
		const char *unit;
		uint64_t	mult;
	}			units[] = {
		{"", 1}, {"b", 1},
		{"k", 1ULL << 10}, {"kb", 1ULL << 10}, {"kib", 1ULL << 10},
		{"m", 1ULL << 20}, {"mb", 1ULL << 20}, {"mib", 1ULL << 20},
		{"g", 1ULL << 30}, {"gb", 1ULL << 30}, {"gib", 1ULL << 30},
		{"t", 1ULL << 40}, {"tb", 1ULL << 40}, {"tib", 1ULL << 40},
	};
	uint64_t	v;
	const char *rest = parse_u64(s, &v);
	char		unit[8];
	size_t		n;

	if (rest == NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "invalid size \"%s\": expected a number with an optional unit such as 16MiB", s);
	n = strlen(rest);
	while (n > 0 && isspace((unsigned char) rest[n - 1]))
		n--;
	if (n >= sizeof(unit))
		return pv_err_set(err, PV_E_USAGE, 0, "invalid size \"%s\": unknown unit", s);
	memcpy(unit, rest, n);
	unit[n] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
	{
		if (strcasecmp(unit, units[i].unit) == 0)
		{
			if (!mul_ok(v, units[i].mult, out))
				return pv_err_set(err, PV_E_USAGE, 0, "invalid size \"%s\": too large", s);
			return 0;
		}
	}
	return pv_err_set(err, PV_E_USAGE, 0, "invalid size \"%s\": unknown unit \"%s\" (use B, KiB, MiB, GiB or TiB)", s, unit);
}

int
pv_parse_duration_ms(const char *s, uint64_t *out, pv_err *err)
{
	static const struct
	{
		const char *unit;
		uint64_t	ms;
	}			units[] = {
		{"", 1000}, {"ms", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
		{"h", 3600000}, {"d", 86400000}, {"w", 604800000},
	};
	uint64_t	v;
	const char *rest = parse_u64(s, &v);
	char		unit[8];
	size_t		n;

	if (rest == NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "invalid duration \"%s\": expected a number with a unit such as 14d, 36h, 30s", s);
	n = strlen(rest);
	while (n > 0 && isspace((unsigned char) rest[n - 1]))
		n--;
	if (n >= sizeof(unit))
		return pv_err_set(err, PV_E_USAGE, 0, "invalid duration \"%s\": unknown unit", s);
	memcpy(unit, rest, n);
	unit[n] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
	{
		if (strcasecmp(unit, units[i].unit) == 0)
		{
			if (!mul_ok(v, units[i].ms, out))
				return pv_err_set(err, PV_E_USAGE, 0, "invalid duration \"%s\": too large", s);
			return 0;
		}
	}
	return pv_err_set(err, PV_E_USAGE, 0, "invalid duration \"%s\": unknown unit \"%s\" (use ms, s, m, h, d or w)", s, unit);
}

int
pv_parse_bool(const char *s, bool *out, pv_err *err)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	for (size_t i = 0; i < 4; i++)
	{
		if (strcasecmp(s, yes[i]) == 0)
		{
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0)
		{
			*out = false;
			return 0;
		}
	}
	return pv_err_set(err, PV_E_USAGE, 0, "invalid boolean \"%s\": use on or off", s);
}

int
pv_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, pv_err *err)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno != 0)
		return pv_err_set(err, PV_E_USAGE, 0, "invalid integer \"%s\"", s);
	while (isspace((unsigned char) *end))
		end++;
	if (*end != '\0')
		return pv_err_set(err, PV_E_USAGE, 0, "invalid integer \"%s\"", s);
	if (v < min || v > max)
		return pv_err_set(err, PV_E_USAGE, 0, "value %lld is out of range (%" PRId64 "..%" PRId64 ")", v, min, max);
	*out = v;
	return 0;
}

const char *
pv_format_size(uint64_t bytes, char *buf, size_t buflen)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double		v = (double) bytes;
	int			u = 0;

	while (v >= 1024.0 && u < 5)
	{
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, buflen, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, buflen, "%.1f %s", v, units[u]);
	return buf;
}

const char *
pv_format_duration_ms(uint64_t ms, char *buf, size_t buflen)
{
	if (ms < 60000)
		snprintf(buf, buflen, "%.1fs", (double) ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, buflen, "%um%02us", (unsigned) (ms / 60000), (unsigned) (ms / 1000 % 60));
	else
		snprintf(buf, buflen, "%uh%02um", (unsigned) (ms / 3600000), (unsigned) (ms / 60000 % 60));
	return buf;
}

void
pv_hex_encode(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pv_hex_decode(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		int			hi = hexval(hex[2 * i]);
		int			lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t) (hi << 4 | lo);
	}
	return 0;
}
