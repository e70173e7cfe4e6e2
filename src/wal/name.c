/*
 * name.c - WAL file names, segment numbers, repository keys and segment
 * header checks: the one place that turns names into numbers and back
 *
 * Layouts follow PostgreSQL's xlog_internal.h (identical from 9.x to 17):
 *
 *   XLogPageHeaderData      xlp_magic u16 @0, xlp_info u16 @2, xlp_tli u32 @4,
 *                           xlp_pageaddr u64 @8, xlp_rem_len u32 @16 (24 bytes)
 *   XLogLongPageHeaderData  + xlp_sysid u64 @24, xlp_seg_size u32 @32,
 *                           xlp_xlog_blcksz u32 @36 (40 bytes)
 *
 * WAL is written in the server's byte order; pgvault reads it as
 * little-endian (a big-endian segment fails the magic check).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wal/wal_int.h"

#define XLP_LONG_HEADER 0x0002
#define XLP_ALL_FLAGS 0x0007

static const struct
{
	uint16_t	magic;
	int			major;
}			page_magics[] = {
	{0xD106, 13}, {0xD10D, 14}, {0xD110, 15}, {0xD113, 16}, {0xD116, 17},
};

static bool
is_hex_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static uint32_t
hex32(const char *s)
{
	uint32_t	v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 4) | (uint32_t) (s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
	return v;
}

static int
bad_name(const char *name, const char *why, pv_err *err)
{
	pv_err_set(err, PV_E_USAGE, 0, "\"%s\" is not a WAL file name: %s", name, why);
	return pv_err_hint(err, "expected a segment (24 hex digits), TTTTTTTT.history, SEGMENT.partial or SEGMENT.XXXXXXXX.backup");
}

int
pv_wal_name_parse(const char *name, pv_wal_name *out, pv_err *err)
{
	size_t		len = strlen(name);

	memset(out, 0, sizeof(*out));
	if (len >= PV_WAL_NAME_MAX)
		return bad_name(name, "too long", err);
	if (len == 16 && strcmp(name + 8, ".history") == 0 && is_hex_upper(name, 8))
		out->kind = PV_WAL_HISTORY;
	else if (len >= 24 && is_hex_upper(name, 24))
	{
		if (len == 24)
			out->kind = PV_WAL_SEGMENT;
		else if (strcmp(name + 24, ".partial") == 0)
			out->kind = PV_WAL_PARTIAL;
		else if (len == 40 && name[24] == '.' && is_hex_upper(name + 25, 8) &&
				 strcmp(name + 33, ".backup") == 0)
			out->kind = PV_WAL_BACKUP;
		else
			return bad_name(name, "unknown suffix", err);
		out->log = hex32(name + 8);
		out->seg = hex32(name + 16);
		if (out->seg >= 0x1000)
			return bad_name(name, "segment field out of range", err);
	}
	else
		return bad_name(name, "unknown form", err);
	out->tli = hex32(name);
	if (out->tli == 0)
		return bad_name(name, "timeline 0 does not exist", err);
	memcpy(out->name, name, len + 1);
	return 0;
}

void
pv_wal_object_key(const pv_wal_name *n, char *key)
{
	snprintf(key, PV_WAL_KEY_MAX, "wal/%08X%08X/%s", n->tli,
			 n->kind == PV_WAL_HISTORY ? 0 : n->log, n->name);
}

const char *
pv_wal_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

bool
pv_wal_seg_size_valid(uint64_t s)
{
	return s >= (1u << 20) && s <= (1u << 30) && (s & (s - 1)) == 0;
}

/* Segments per log id (2^32 / seg_size) of a valid segment size. */
static uint64_t
segs_per_log(uint32_t seg_size)
{
	return UINT64_C(0x100000000) / seg_size;
}

uint64_t
pv_wal_segno(const pv_wal_name *n, uint32_t seg_size)
{
	return (uint64_t) n->log * segs_per_log(seg_size) + n->seg;
}

bool
pv_wal_seg_fits(const pv_wal_name *n, uint32_t seg_size)
{
	return pv_wal_seg_size_valid(seg_size) && n->seg < segs_per_log(seg_size);
}

void
pv_wal_name_segment(uint32_t tli, uint64_t segno, uint32_t seg_size, pv_wal_name *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = PV_WAL_SEGMENT;
	out->tli = tli;
	if (!pv_wal_seg_size_valid(seg_size))
		return;
	out->log = (uint32_t) (segno / segs_per_log(seg_size));
	out->seg = (uint32_t) (segno % segs_per_log(seg_size));
	snprintf(out->name, sizeof(out->name), "%08X%08X%08X", tli, out->log, out->seg);
}

void
pv_wal_segno_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char *out)
{
	pv_wal_name n;

	pv_wal_name_segment(tli, segno, seg_size, &n);
	memcpy(out, n.name, strlen(n.name) + 1);
}

void
pv_wal_name_history(uint32_t tli, pv_wal_name *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = PV_WAL_HISTORY;
	out->tli = tli;
	snprintf(out->name, sizeof(out->name), "%08X.history", tli);
}

uint64_t
pv_wal_name_pos(const pv_wal_name *n)
{
	return (uint64_t) n->log << 32 | n->seg;
}

uint64_t
pv_wal_lsn_pos(uint64_t lsn, uint32_t seg_size)
{
	pv_wal_name n;

	if (!pv_wal_seg_size_valid(seg_size))
		return 0;
	pv_wal_name_segment(1, lsn / seg_size, seg_size, &n);
	return pv_wal_name_pos(&n);
}

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t) le32(p) | ((uint64_t) le32(p + 4) << 32);
}

static int
bad_segment(const char *path, pv_err *err, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static int
bad_segment(const char *path, pv_err *err, const char *fmt,...)
{
	char		why[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pv_err_set(err, PV_E_CORRUPT, 0, "\"%s\" is not a valid WAL segment: %s", path, why);
	return pv_err_hint(err, "PostgreSQL only archives complete segments; check that the path is a segment from pg_wal");
}

static int
check_magic(const uint8_t *page, const char *path, pv_wal_seginfo *info, pv_err *err)
{
	info->magic = le16(page);
	for (size_t i = 0; i < sizeof(page_magics) / sizeof(page_magics[0]); i++)
		if (page_magics[i].magic == info->magic)
		{
			info->pg_major = page_magics[i].major;
			return 0;
		}
	return bad_segment(path, err, "xlp_magic 0x%04X is not the page magic of PostgreSQL 13..17", info->magic);
}

int
pv_wal_check_segment(const pv_wal_name *n, const uint8_t *page, size_t len, uint64_t file_size,
					 const char *path, pv_wal_seginfo *info, pv_err *err)
{
	uint16_t	xinfo;
	uint64_t	pageaddr;
	uint64_t	want_addr;

	memset(info, 0, sizeof(*info));
	if (len < PV_WAL_LONG_HEADER_LEN)
		return bad_segment(path, err, "the file has %zu bytes, fewer than a first page header", len);
	if (check_magic(page, path, info, err) != 0)
		return -1;
	xinfo = le16(page + 2);
	if ((xinfo & XLP_LONG_HEADER) == 0 || (xinfo & ~XLP_ALL_FLAGS) != 0)
		return bad_segment(path, err, "xlp_info 0x%04X is not that of a long page header", xinfo);
	info->page_tli = le32(page + 4);
	pageaddr = le64(page + 8);
	info->sysid = le64(page + 24);
	info->seg_size = le32(page + 32);
	info->blcksz = le32(page + 36);
	if (!pv_wal_seg_size_valid(info->seg_size))
		return bad_segment(path, err, "xlp_seg_size %u is not a power of two from 1 MiB to 1 GiB", info->seg_size);
	if (file_size != info->seg_size)
		return bad_segment(path, err, "the file has %llu bytes but its header says wal_segment_size is %u",
						   (unsigned long long) file_size, info->seg_size);
	if (info->blcksz < 1024 || info->blcksz > 65536 || (info->blcksz & (info->blcksz - 1)) != 0)
		return bad_segment(path, err, "xlp_xlog_blcksz %u is not a power of two from 1 kB to 64 kB", info->blcksz);
	if (info->sysid == 0)
		return bad_segment(path, err, "xlp_sysid is 0");
	if (info->page_tli == 0 || info->page_tli > n->tli)
		return bad_segment(path, err, "xlp_tli %u does not fit the file name's timeline %u", info->page_tli, n->tli);
	if (!pv_wal_seg_fits(n, info->seg_size))
		return bad_segment(path, err, "the name's segment field %u is out of range for %u-byte segments",
						   n->seg, info->seg_size);
	want_addr = pv_wal_segno(n, info->seg_size) * info->seg_size;
	if (pageaddr != want_addr)
		return bad_segment(path, err, "xlp_pageaddr %X/%08X does not match the file name (expected %X/%08X)",
						   (uint32_t) (pageaddr >> 32), (uint32_t) pageaddr,
						   (uint32_t) (want_addr >> 32), (uint32_t) want_addr);
	return 0;
}
