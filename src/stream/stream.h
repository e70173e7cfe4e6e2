/*
 * stream.h - the filter-chain abstraction every pipeline in pgvault is made of
 *
 * A pv_stream is one stage: it receives bytes through write(), does its job
 * and passes its output to the next stage. Chains are built sink first; each
 * stage owns its next stage:
 *   - finish() flushes the stage's own buffered data, then finishes next;
 *   - free() frees next, then the stage itself. Freeing a chain that was not
 *     finished abandons it (a storage sink then aborts its upload).
 * Pointers passed into write() are borrowed for the length of that call.
 *
 * Data carries a context: byte-level stages (zstd, seal, hash, count) see
 * PV_CTX_DATA or pass the context and member through unchanged; only the tar
 * parser assigns member contexts.
 *
 * Errors: write() and finish() return 0, or -1 with *err filled. A stage
 * never logs and carries on: after an error the chain must be freed.
 */
#ifndef PV_STREAM_STREAM_H
#define PV_STREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/mem.h"

typedef enum pv_stream_ctx
{
	PV_CTX_DATA = 0,			/* plain bytes */
	PV_CTX_MEMBER_HEADER,		/* start of an archive member (member set) */
	PV_CTX_MEMBER_CONTENTS,		/* contents of the current member */
	PV_CTX_MEMBER_TRAILER,		/* end of the current member */
	PV_CTX_ARCHIVE_TRAILER		/* end of an archive */
} pv_stream_ctx;

#define PV_MEMBER_PATH_MAX 1024

typedef struct pv_stream_member
{
	char		path[PV_MEMBER_PATH_MAX];	/* relative, validated */
	char		linktarget[PV_MEMBER_PATH_MAX];
	uint64_t	size;
	mode_t		mode;
	int64_t		mtime;
	bool		is_directory;
	bool		is_link;
} pv_stream_member;

typedef struct pv_stream pv_stream;

typedef struct pv_stream_ops
{
	int			(*write) (pv_stream *s, const pv_stream_member *member,
						  const uint8_t *data, size_t len, pv_stream_ctx ctx, pv_err *err);
	int			(*finish) (pv_stream *s, pv_err *err);
	void		(*free) (pv_stream *s);
} pv_stream_ops;

struct pv_stream
{
	const pv_stream_ops *ops;
	pv_stream  *next;
};

static inline int
pv_stream_write_ctx(pv_stream *s, const pv_stream_member *member,
					const uint8_t *data, size_t len, pv_stream_ctx ctx, pv_err *err)
{
	return s->ops->write(s, member, data, len, ctx, err);
}

/* Write plain bytes. */
static inline int
pv_stream_write(pv_stream *s, const void *data, size_t len, pv_err *err)
{
	return s->ops->write(s, NULL, (const uint8_t *) data, len, PV_CTX_DATA, err);
}

static inline int
pv_stream_finish(pv_stream *s, pv_err *err)
{
	return s->ops->finish(s, err);
}

static inline void
pv_stream_free(pv_stream *s)
{
	if (s != NULL)
		s->ops->free(s);
}

/*
 * Write data to s as plain bytes, finish s and free it (s is owned: freed
 * either way). s may be NULL, when the constructor failed (and set err):
 * then -1.
 */
extern int	pv_stream_put_all(pv_stream *s, const void *data, size_t len, pv_err *err);

/* Helpers for stage implementations: forward to / finish / free next. */
extern int	pv_stream_forward(pv_stream *s, const pv_stream_member *member,
							  const uint8_t *data, size_t len, pv_stream_ctx ctx, pv_err *err);
extern int	pv_stream_finish_next(pv_stream *s, pv_err *err);
extern void pv_stream_free_next(pv_stream *s);

/* Sink: append everything to *out (borrowed; must outlive the stream). */
extern pv_stream *pv_stream_buffer_new(pv_buf *out);
/* The same, but more than max bytes in all is an error naming what (PV_E_CORRUPT). */
extern pv_stream *pv_stream_buffer_limit_new(pv_buf *out, size_t max, const char *what);
/* Sink: write everything to fd (borrowed, not closed); path only names it in errors. */
extern pv_stream *pv_stream_fd_new(int fd, const char *path);
/* Sink: discard everything. */
extern pv_stream *pv_stream_null_new(void);

/*
 * Pass-through that counts bytes and hashes them with BLAKE2b-256 (unkeyed);
 * results valid after finish.
 */
extern pv_stream *pv_stream_count_new(pv_stream *next);
extern uint64_t pv_stream_count_bytes(pv_stream *s);
extern const uint8_t *pv_stream_count_hash(pv_stream *s);	/* 32 bytes */

/*
 * Pass-through that buffers input and forwards it in pieces of exactly
 * block_size bytes (the last one may be shorter). Used to turn arbitrary
 * writes into fixed frames.
 */
extern pv_stream *pv_stream_rebuffer_new(pv_stream *next, size_t block_size);

/*
 * Tar parser (tar.c): ustar bytes in; out to next: for each member one
 * PV_CTX_MEMBER_HEADER (member filled, no data), its contents as
 * PV_CTX_MEMBER_CONTENTS (same member pointer), one PV_CTX_MEMBER_TRAILER;
 * at the end-of-archive blocks one PV_CTX_ARCHIVE_TRAILER (member NULL).
 * Names and sizes are untrusted: the checksum is verified, paths are
 * normalized ("./" removed) and refused when absolute, empty, containing
 * ".." or NUL, or too long; sizes (octal or base-256) are bounds-checked;
 * only regular files, directories and symlinks are accepted. finish() fails
 * when the archive ends early (mid-member or without the end blocks).
 */
extern pv_stream *pv_stream_tar_parser_new(pv_stream *next);

/* zstd (zstd.c): compress at level / decompress. Decompress fails on a truncated frame. */
extern pv_stream *pv_stream_zstd_compress_new(pv_stream *next, int level);
extern pv_stream *pv_stream_zstd_decompress_new(pv_stream *next);

#endif
