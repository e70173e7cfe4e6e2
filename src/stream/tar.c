/*
 * tar.c - the tar parser stage: ustar bytes in, labelled members out
 *
 * Reads POSIX ustar (magic "ustar\0" "00", as written by PostgreSQL's
 * tarCreateHeader and GNU tar --format=ustar) and GNU tar headers (magic
 * "ustar  \0", with 'L'/'K' long name records). Everything in a header is
 * untrusted: the checksum is verified, numbers are parsed strictly (octal,
 * or GNU base-256), paths are normalized and refused when they could
 * escape the archive's root.
 *
 * Input arrives in writes of any size (down to one byte); member contents
 * are forwarded as they arrive, without buffering. The parser is a small
 * state machine:
 *   HEADER    collecting a 512-byte header block
 *   LONGNAME  collecting the data of a GNU 'L' or 'K' record
 *   CONTENTS  forwarding a member's contents
 *   PADDING   skipping the padding up to the next 512-byte boundary
 *   END       after the two zero blocks: only zero bytes may follow
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/stream.h"

#define TAR_BLOCK 512
#define TAR_MAX_SIZE (UINT64_C(1) << 40)	/* 1 TiB: refuse anything larger */

/* ustar header field offsets and lengths */
#define H_NAME 0
#define H_NAME_LEN 100
#define H_MODE 100
#define H_MTIME 136
#define H_SIZE 124
#define H_CHKSUM 148
#define H_TYPE 156
#define H_LINK 157
#define H_LINK_LEN 100
#define H_MAGIC 257
#define H_PREFIX 345
#define H_PREFIX_LEN 155

typedef enum tar_state
{
	TS_HEADER,
	TS_LONGNAME,
	TS_CONTENTS,
	TS_PADDING,
	TS_END,
	TS_FAILED
} tar_state;

typedef struct tar_parser
{
	pv_stream	base;
	tar_state	state;
	uint8_t		hdr[TAR_BLOCK];
	size_t		hdr_fill;
	int			zero_blocks;	/* consecutive zero header blocks (0 or 1) */
	uint64_t	offset;			/* bytes consumed so far */
	uint64_t	block_offset;	/* offset of the current header block */
	uint64_t	remaining;		/* contents or long name bytes still to come */
	uint64_t	pad;			/* padding bytes still to skip */
	pv_stream_member member;
	/* GNU long name records: one being read, and the pending ones */
	char		longtype;		/* 'L' or 'K' while in TS_LONGNAME */
	char		lbuf[PV_MEMBER_PATH_MAX];
	size_t		lfill;
	size_t		llen;
	char		longname[PV_MEMBER_PATH_MAX];
	char		longlink[PV_MEMBER_PATH_MAX];
	bool		have_longname;
	bool		have_longlink;
} tar_parser;

/* A raw name for messages: at most 200 bytes, non-printable bytes as '?'. */
static void
printable(const char *raw, char *out, size_t outlen)
{
	size_t		i;

	for (i = 0; raw[i] != '\0' && i < 200 && i + 1 < outlen; i++)
		out[i] = isprint((unsigned char) raw[i]) ? raw[i] : '?';
	out[i] = '\0';
}

/* An error about a member (raw name from the header); the parser is dead afterwards. */
static int
member_error(tar_parser *t, pv_err *err, const char *raw, const char *what)
{
	char		name[256];

	t->state = TS_FAILED;
	printable(raw, name, sizeof(name));
	return pv_err_set(err, PV_E_CORRUPT, 0, "tar member \"%s\": %s", name, what);
}

/* An error about the archive at an offset. */
static int
archive_error(tar_parser *t, pv_err *err, uint64_t offset, const char *what)
{
	t->state = TS_FAILED;
	return pv_err_set(err, PV_E_CORRUPT, 0, "tar archive at offset %" PRIu64 ": %s", offset, what);
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/*
 * A numeric header field: octal digits (leading spaces allowed, then only
 * NUL or space to the end of the field; at least one digit), or GNU
 * base-256 (first byte 0x80: positive, 0xff: negative two's complement).
 * Values beyond int64 saturate. Returns -1 when the field is malformed.
 */
static int
parse_number(const uint8_t *f, size_t n, int64_t *out)
{
	uint64_t	v = 0;
	size_t		i = 0;
	bool		saturated = false;

	if (f[0] == 0x80 || f[0] == 0xff)
	{
		bool		neg = (f[0] == 0xff);

		for (i = 1; i < n; i++)
		{
			uint8_t		b = neg ? (uint8_t) ~f[i] : f[i];

			if (v > (UINT64_MAX >> 8))
				saturated = true;
			v = (v << 8) | b;
		}
		if (saturated || v > (uint64_t) INT64_MAX)
			*out = neg ? INT64_MIN : INT64_MAX;
		else
			*out = neg ? -(int64_t) v - 1 : (int64_t) v;
		return 0;
	}
	while (i < n && f[i] == ' ')
		i++;
	if (i == n || f[i] < '0' || f[i] > '7')
		return -1;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = (v << 3) | (uint64_t) (f[i] - '0');	/* at most 12 digits: no overflow */
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	*out = (int64_t) v;
	return 0;
}

/* Unsigned byte sum with the checksum field counted as spaces. */
static int64_t
header_checksum(const uint8_t *h)
{
	int64_t		sum = 8 * ' ';

	for (int i = 0; i < TAR_BLOCK; i++)
		if (i < H_CHKSUM || i >= H_CHKSUM + 8)
			sum += h[i];
	return sum;
}

/* A fixed-width string field: up to the first NUL or the field's end. */
static void
field_string(const uint8_t *f, size_t n, char *out)
{
	size_t		len = strnlen((const char *) f, n);

	memcpy(out, f, len);
	out[len] = '\0';
}

/*
 * Normalize a member path into out (PV_MEMBER_PATH_MAX): "./" prefixes
 * removed, one trailing '/' removed for directories and symlinks (PostgreSQL
 * writes symlinks as "pg_tblspc/16385/"); refused when absolute, empty, too
 * long, or with an empty, "." or ".." component.
 */
static int
normalize_path(tar_parser *t, const char *raw, bool dir_or_link, char *out, pv_err *err)
{
	const char *p = raw;
	size_t		len;

	if (p[0] == '/')
		return member_error(t, err, raw, "absolute path");
	while (p[0] == '.' && p[1] == '/')
	{
		p += 2;
		while (*p == '/')
			p++;
	}
	len = strlen(p);
	if (len > 0 && p[len - 1] == '/')
	{
		if (!dir_or_link)
			return member_error(t, err, raw, "file name ends with a slash");
		len--;
	}
	if (len == 0)
		return member_error(t, err, raw, "empty path");
	if (len >= PV_MEMBER_PATH_MAX)
		return member_error(t, err, raw, "path is too long");
	memcpy(out, p, len);
	out[len] = '\0';
	for (const char *seg = out;;)
	{
		const char *slash = strchr(seg, '/');
		size_t		slen = slash ? (size_t) (slash - seg) : strlen(seg);

		if (slen == 2 && seg[0] == '.' && seg[1] == '.')
			return member_error(t, err, raw, "path escapes the archive");
		if (slen == 0)
			return member_error(t, err, raw, "path has an empty component");
		if (slen == 1 && seg[0] == '.')
			return member_error(t, err, raw, "path has a \".\" component");
		if (slash == NULL)
			break;
		seg = slash + 1;
	}
	return 0;
}

/* The member's raw name: GNU long name, or prefix '/' name (POSIX), or name. */
static void
raw_name(tar_parser *t, bool posix, char *out)
{
	char		name[H_NAME_LEN + 1];
	char		prefix[H_PREFIX_LEN + 1];

	if (t->have_longname)
	{
		strcpy(out, t->longname);
		return;
	}
	field_string(t->hdr + H_NAME, H_NAME_LEN, name);
	/* GNU headers use the prefix area for other fields */
	if (posix)
		field_string(t->hdr + H_PREFIX, H_PREFIX_LEN, prefix);
	else
		prefix[0] = '\0';
	if (prefix[0] != '\0')
		snprintf(out, PV_MEMBER_PATH_MAX, "%s/%s", prefix, name);
	else
		strcpy(out, name);
}

/* Type flag -> member kind; anything but files, directories and symlinks is refused. */
static int
check_type(tar_parser *t, char type, const char *raw, pv_err *err)
{
	char		msg[64];

	switch (type)
	{
		case '0':
		case '\0':
		case '5':
		case '2':
			return 0;
		case '1':
			return member_error(t, err, raw, "hard links are not supported");
		case '3':
		case '4':
			return member_error(t, err, raw, "device files are not supported");
		case '6':
			return member_error(t, err, raw, "FIFOs are not supported");
		default:
			if (isprint((unsigned char) type))
				snprintf(msg, sizeof(msg), "unsupported member type '%c'", type);
			else
				snprintf(msg, sizeof(msg), "unsupported member type 0x%02x", (unsigned char) type);
			return member_error(t, err, raw, msg);
	}
}

/* Size field: not negative, at most 1 TiB. */
static int
header_size(tar_parser *t, const char *raw, uint64_t *size, pv_err *err)
{
	int64_t		v;

	if (parse_number(t->hdr + H_SIZE, 12, &v) != 0)
		return member_error(t, err, raw, "invalid size field");
	if (v < 0)
		return member_error(t, err, raw, "negative size");
	if ((uint64_t) v > TAR_MAX_SIZE)
		return member_error(t, err, raw, "size is larger than 1 TiB");
	*size = (uint64_t) v;
	return 0;
}

static uint64_t
padding_for(uint64_t size)
{
	return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

/* A GNU 'L' (long name) or 'K' (long link target) record: its data follows. */
static int
start_longname(tar_parser *t, char type, uint64_t size, pv_err *err)
{
	const char *what = type == 'L' ? "././@LongLink" : "././@LongLink (link target)";

	if ((type == 'L' && t->have_longname) || (type == 'K' && t->have_longlink))
		return member_error(t, err, what, "two long name records for one member");
	if (size == 0 || size > PV_MEMBER_PATH_MAX)
		return member_error(t, err, what, "long name record has an invalid size");
	t->longtype = type;
	t->remaining = size;
	t->llen = (size_t) size;
	t->lfill = 0;
	t->pad = padding_for(size);
	t->state = TS_LONGNAME;
	return 0;
}

/* The long name record is complete: NUL-terminated, no NUL inside. */
static int
end_longname(tar_parser *t, pv_err *err)
{
	size_t		len = strnlen(t->lbuf, t->llen);
	char	   *dst = t->longtype == 'L' ? t->longname : t->longlink;

	for (size_t i = len; i < t->llen; i++)
		if (t->lbuf[i] != '\0')
			return archive_error(t, err, t->block_offset, "long name record contains a NUL byte");
	if (len == 0 || len >= PV_MEMBER_PATH_MAX)
		return archive_error(t, err, t->block_offset, "long name record is empty or too long");
	memcpy(dst, t->lbuf, len);
	dst[len] = '\0';
	if (t->longtype == 'L')
		t->have_longname = true;
	else
		t->have_longlink = true;
	t->state = t->pad > 0 ? TS_PADDING : TS_HEADER;
	return 0;
}

/* Fill t->member from a verified header; raw is the member's raw name. */
static int
fill_member(tar_parser *t, char type, const char *raw, uint64_t size, pv_err *err)
{
	pv_stream_member *m = &t->member;
	int64_t		mode;
	int64_t		mtime;

	memset(m, 0, sizeof(*m));
	if (check_type(t, type, raw, err) != 0)
		return -1;
	m->is_directory = (type == '5');
	m->is_link = (type == '2');
	if (normalize_path(t, raw, m->is_directory || m->is_link, m->path, err) != 0)
		return -1;
	if (parse_number(t->hdr + H_MODE, 8, &mode) != 0 || mode < 0)
		return member_error(t, err, raw, "invalid mode field");
	if (parse_number(t->hdr + H_MTIME, 12, &mtime) != 0)
		return member_error(t, err, raw, "invalid modification time field");
	m->mode = (mode_t) (mode & 07777);
	m->mtime = mtime;
	m->size = size;
	if ((m->is_directory || m->is_link) && size != 0)
		return member_error(t, err, raw, m->is_link ? "symbolic link with a non-zero size" :
							"directory with a non-zero size");
	if (m->is_link)
	{
		if (t->have_longlink)
			strcpy(m->linktarget, t->longlink);
		else
			field_string(t->hdr + H_LINK, H_LINK_LEN, m->linktarget);
		if (m->linktarget[0] == '\0')
			return member_error(t, err, raw, "symbolic link with an empty target");
	}
	else if (t->have_longlink)
		return member_error(t, err, raw, "long link target for a member that is not a symbolic link");
	return 0;
}

/* Checksum mismatch: name the member if the name field holds one (it may be garbage). */
static int
checksum_error(tar_parser *t, pv_err *err)
{
	char		name[H_NAME_LEN + 1];
	char		what[64];

	field_string(t->hdr + H_NAME, H_NAME_LEN, name);
	if (name[0] == '\0')
		return archive_error(t, err, t->block_offset, "header checksum mismatch");
	snprintf(what, sizeof(what), "header checksum mismatch at offset %" PRIu64, t->block_offset);
	return member_error(t, err, name, what);
}

/* A zero block: the first of the two end-of-archive blocks, or the second. */
static int
zero_block(tar_parser *t, pv_err *err)
{
	if (t->have_longname || t->have_longlink)
		return archive_error(t, err, t->block_offset, "long name record without a member");
	if (++t->zero_blocks < 2)
		return 0;
	t->state = TS_END;
	return pv_stream_forward(&t->base, NULL, NULL, 0, PV_CTX_ARCHIVE_TRAILER, err);
}

/* A complete 512-byte header block. */
static int
process_header(tar_parser *t, pv_err *err)
{
	const uint8_t *h = t->hdr;
	bool		posix = memcmp(h + H_MAGIC, "ustar\0" "00", 8) == 0;
	bool		gnu = memcmp(h + H_MAGIC, "ustar  \0", 8) == 0;
	char		raw[PV_MEMBER_PATH_MAX + H_PREFIX_LEN + 2];
	char		type = (char) h[H_TYPE];
	int64_t		chk;
	uint64_t	size = 0;

	if (all_zero(h, TAR_BLOCK))
		return zero_block(t, err);
	if (t->zero_blocks > 0)
		return archive_error(t, err, t->block_offset, "header after an end-of-archive block");
	if (parse_number(h + H_CHKSUM, 8, &chk) != 0 || chk != header_checksum(h))
		return checksum_error(t, err);
	if (!posix && !gnu)
		return archive_error(t, err, t->block_offset, "not a ustar header");
	raw_name(t, posix, raw);
	if (header_size(t, raw, &size, err) != 0)
		return -1;
	if (gnu && (type == 'L' || type == 'K'))
		return start_longname(t, type, size, err);
	if (fill_member(t, type, raw, size, err) != 0)
		return -1;
	t->have_longname = false;
	t->have_longlink = false;
	if (pv_stream_forward(&t->base, &t->member, NULL, 0, PV_CTX_MEMBER_HEADER, err) != 0)
		return -1;
	t->remaining = size;
	t->pad = padding_for(size);
	if (size > 0)
	{
		t->state = TS_CONTENTS;
		return 0;
	}
	t->state = TS_HEADER;
	return pv_stream_forward(&t->base, &t->member, NULL, 0, PV_CTX_MEMBER_TRAILER, err);
}

/* Each step consumes some of the input and returns how much (or -1). */

static ssize_t
step_header(tar_parser *t, const uint8_t *data, size_t len, pv_err *err)
{
	size_t		n = TAR_BLOCK - t->hdr_fill;

	if (n > len)
		n = len;
	if (t->hdr_fill == 0)
		t->block_offset = t->offset;
	memcpy(t->hdr + t->hdr_fill, data, n);
	t->hdr_fill += n;
	if (t->hdr_fill == TAR_BLOCK)
	{
		t->hdr_fill = 0;
		if (process_header(t, err) != 0)
			return -1;
	}
	return (ssize_t) n;
}

static ssize_t
step_longname(tar_parser *t, const uint8_t *data, size_t len, pv_err *err)
{
	size_t		n = t->remaining < len ? (size_t) t->remaining : len;

	memcpy(t->lbuf + t->lfill, data, n);
	t->lfill += n;
	t->remaining -= n;
	if (t->remaining == 0 && end_longname(t, err) != 0)
		return -1;
	return (ssize_t) n;
}

static ssize_t
step_contents(tar_parser *t, const uint8_t *data, size_t len, pv_err *err)
{
	size_t		n = t->remaining < len ? (size_t) t->remaining : len;

	if (pv_stream_forward(&t->base, &t->member, data, n, PV_CTX_MEMBER_CONTENTS, err) != 0)
		return -1;
	t->remaining -= n;
	if (t->remaining == 0)
	{
		t->state = t->pad > 0 ? TS_PADDING : TS_HEADER;
		if (pv_stream_forward(&t->base, &t->member, NULL, 0, PV_CTX_MEMBER_TRAILER, err) != 0)
			return -1;
	}
	return (ssize_t) n;
}

static ssize_t
step_padding(tar_parser *t, size_t len)
{
	size_t		n = t->pad < len ? (size_t) t->pad : len;

	t->pad -= n;
	if (t->pad == 0)
		t->state = TS_HEADER;
	return (ssize_t) n;
}

/* After the end blocks: zero bytes are padding (tar pads to its record size), anything else is refused. */
static ssize_t
step_end(tar_parser *t, const uint8_t *data, size_t len, pv_err *err)
{
	for (size_t i = 0; i < len; i++)
		if (data[i] != 0)
			return archive_error(t, err, t->offset + i, "data after the end of the archive");
	return (ssize_t) len;
}

static int
tar_write(pv_stream *s, const pv_stream_member *member, const uint8_t *data, size_t len,
		  pv_stream_ctx ctx, pv_err *err)
{
	tar_parser *t = (tar_parser *) s;

	while (len > 0)
	{
		ssize_t		n = -1;

		switch (t->state)
		{
			case TS_HEADER:
				n = step_header(t, data, len, err);
				break;
			case TS_LONGNAME:
				n = step_longname(t, data, len, err);
				break;
			case TS_CONTENTS:
				n = step_contents(t, data, len, err);
				break;
			case TS_PADDING:
				n = step_padding(t, len);
				break;
			case TS_END:
				n = step_end(t, data, len, err);
				break;
			case TS_FAILED:
				return pv_err_set(err, PV_E_FAIL, 0, "tar parser used after an error");
		}
		if (n < 0)
		{
			t->state = TS_FAILED;
			return -1;
		}
		t->offset += (uint64_t) n;
		data += n;
		len -= (size_t) n;
	}
	return 0;
}

static int
tar_finish(pv_stream *s, pv_err *err)
{
	tar_parser *t = (tar_parser *) s;
	char		name[256];

	printable(t->member.path, name, sizeof(name));
	switch (t->state)
	{
		case TS_END:
			return pv_stream_finish_next(s, err);
		case TS_HEADER:
			if (t->hdr_fill > 0)
				return archive_error(t, err, t->block_offset, "archive is truncated inside a header");
			if (t->zero_blocks == 1)
				return archive_error(t, err, t->offset, "archive ends after one of its two end-of-archive blocks");
			return archive_error(t, err, t->offset, "archive ends without the end-of-archive blocks");
		case TS_LONGNAME:
			return archive_error(t, err, t->offset, "archive is truncated inside a long name record");
		case TS_CONTENTS:
			t->state = TS_FAILED;
			return pv_err_set(err, PV_E_CORRUPT, 0, "tar member \"%s\" is truncated: %" PRIu64 " of %" PRIu64 " bytes",
							  name, t->member.size - t->remaining, t->member.size);
		case TS_PADDING:
			return archive_error(t, err, t->offset, "archive is truncated inside the padding of a member");
		case TS_FAILED:
			break;
	}
	return pv_err_set(err, PV_E_FAIL, 0, "tar parser used after an error");
}

static void
tar_free(pv_stream *s)
{
	pv_stream_free_next(s);
	free(s);
}

static const pv_stream_ops tar_ops = {tar_write, tar_finish, tar_free};

pv_stream *
pv_stream_tar_parser_new(pv_stream *next)
{
	tar_parser *t = pv_calloc(1, sizeof(*t));

	t->base.ops = &tar_ops;
	t->base.next = next;
	t->state = TS_HEADER;
	return &t->base;
}
