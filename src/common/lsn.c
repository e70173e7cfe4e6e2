/*
 * lsn.c - WAL positions (LSNs) to and from text
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "common/lsn.h"

/* Up to 8 hex digits into *out; returns the number of characters consumed, 0 if none. */
static size_t
parse_hex32(const char *s, uint32_t *out)
{
	uint32_t	v = 0;
	size_t		i;

	for (i = 0; i < 8 && isxdigit((unsigned char) s[i]); i++)
	{
		char		c = s[i];
		uint32_t	d = (c >= '0' && c <= '9') ? (uint32_t) (c - '0') :
			(uint32_t) (tolower((unsigned char) c) - 'a' + 10);

		v = (v << 4) | d;
	}
	if (isxdigit((unsigned char) s[i]))
		return 0;				/* more than 8 digits */
	*out = v;
	return i;
}

int
pv_lsn_parse(const char *s, uint64_t *lsn)
{
	uint32_t	hi;
	uint32_t	lo;
	size_t		n;

	if (s == NULL || (n = parse_hex32(s, &hi)) == 0 || s[n] != '/')
		return -1;
	s += n + 1;
	if ((n = parse_hex32(s, &lo)) == 0 || s[n] != '\0')
		return -1;
	*lsn = ((uint64_t) hi << 32) | lo;
	return 0;
}

void
pv_lsn_format(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIX32 "/%" PRIX32, (uint32_t) (lsn >> 32), (uint32_t) lsn);
}
