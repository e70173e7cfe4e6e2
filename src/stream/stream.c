/*
 * stream.c - generic stage helpers and simple sinks
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "stream/stream.h"

int
pv_stream_forward(pv_stream *s, const pv_stream_member *member,
				  const uint8_t *data, size_t len, pv_stream_ctx ctx, pv_err *err)
{
	return s->next->ops->write(s->next, member, data, len, ctx, err);
}

int
pv_stream_finish_next(pv_stream *s, pv_err *err)
{
	return s->next != NULL ? s->next->ops->finish(s->next, err) : 0;
}

void
pv_stream_free_next(pv_stream *s)
{
	pv_stream_free(s->next);
	s->next = NULL;
}

/* ---- buffer sink ---- */

typedef struct buffer_sink
{
	pv_stream	base;
	pv_buf	   *out;
	size_t		written;
	size_t		max;
	char	   *what;
} buffer_sink;

static int
buffer_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			 pv_stream_ctx ctx, pv_err *err)
{
	buffer_sink *b = (buffer_sink *) s;

	if (len > b->max - b->written)
		return pv_err_set(err, PV_E_CORRUPT, 0, "%s is larger than the %zu bytes expected", b->what, b->max);
	b->written += len;
	pv_buf_append(b->out, data, len);
	return 0;
}

static void
buffer_free(pv_stream *s)
{
	free(((buffer_sink *) s)->what);
	free(s);
}

static int
sink_finish(pv_stream *s, pv_err *err)
{
	return 0;
}

static void
sink_free(pv_stream *s)
{
	free(s);
}

static const pv_stream_ops buffer_ops = {buffer_write, sink_finish, buffer_free};

pv_stream *
pv_stream_buffer_limit_new(pv_buf *out, size_t max, const char *what)
{
	buffer_sink *s = pv_calloc(1, sizeof(*s));

	s->base.ops = &buffer_ops;
	s->out = out;
	s->max = max;
	s->what = pv_strdup(what);
	return &s->base;
}

pv_stream *
pv_stream_buffer_new(pv_buf *out)
{
	return pv_stream_buffer_limit_new(out, SIZE_MAX, "buffer");
}

/* ---- fd sink ---- */

typedef struct fd_sink
{
	pv_stream	base;
	int			fd;
	char	   *path;
} fd_sink;

static int
fd_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		 pv_stream_ctx ctx, pv_err *err)
{
	fd_sink    *f = (fd_sink *) s;

	return pv_write_all(f->fd, data, len, f->path, err);
}

static void
fd_free(pv_stream *s)
{
	free(((fd_sink *) s)->path);
	free(s);
}

static const pv_stream_ops fd_ops = {fd_write, sink_finish, fd_free};

pv_stream *
pv_stream_fd_new(int fd, const char *path)
{
	fd_sink    *s = pv_calloc(1, sizeof(*s));

	s->base.ops = &fd_ops;
	s->fd = fd;
	s->path = pv_strdup(path);
	return &s->base;
}

/* ---- null sink ---- */

static int
null_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		   pv_stream_ctx ctx, pv_err *err)
{
	return 0;
}

static const pv_stream_ops null_ops = {null_write, sink_finish, sink_free};

pv_stream *
pv_stream_null_new(void)
{
	pv_stream  *s = pv_calloc(1, sizeof(*s));

	s->ops = &null_ops;
	return s;
}

/* ---- count + hash pass-through ---- */

typedef struct count_stage
{
	pv_stream	base;
	uint64_t	bytes;
	crypto_generichash_state state;
	uint8_t		hash[32];
} count_stage;

static int
count_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			pv_stream_ctx ctx, pv_err *err)
{
	count_stage *c = (count_stage *) s;

	c->bytes += len;
	crypto_generichash_update(&c->state, data, len);
	return s->next ? pv_stream_forward(s, m, data, len, ctx, err) : 0;
}

static int
count_finish(pv_stream *s, pv_err *err)
{
	count_stage *c = (count_stage *) s;

	crypto_generichash_final(&c->state, c->hash, sizeof(c->hash));
	return pv_stream_finish_next(s, err);
}

static void
count_free(pv_stream *s)
{
	pv_stream_free_next(s);
	free(s);
}

static const pv_stream_ops count_ops = {count_write, count_finish, count_free};

pv_stream *
pv_stream_count_new(pv_stream *next)
{
	count_stage *c = pv_calloc(1, sizeof(*c));

	c->base.ops = &count_ops;
	c->base.next = next;
	crypto_generichash_init(&c->state, NULL, 0, sizeof(c->hash));
	return &c->base;
}

uint64_t
pv_stream_count_bytes(pv_stream *s)
{
	return ((count_stage *) s)->bytes;
}

const uint8_t *
pv_stream_count_hash(pv_stream *s)
{
	return ((count_stage *) s)->hash;
}

/* ---- rebuffer ---- */

typedef struct rebuffer_stage
{
	pv_stream	base;
	size_t		block;
	size_t		used;
	uint8_t    *buf;
} rebuffer_stage;

static int
rebuffer_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			   pv_stream_ctx ctx, pv_err *err)
{
	rebuffer_stage *r = (rebuffer_stage *) s;

	while (len > 0)
	{
		size_t		take;

		if (r->used == 0 && len >= r->block)
		{
			if (pv_stream_forward(s, NULL, data, r->block, PV_CTX_DATA, err) != 0)
				return -1;
			data += r->block;
			len -= r->block;
			continue;
		}
		take = r->block - r->used;
		if (take > len)
			take = len;
		memcpy(r->buf + r->used, data, take);
		r->used += take;
		data += take;
		len -= take;
		if (r->used == r->block)
		{
			if (pv_stream_forward(s, NULL, r->buf, r->used, PV_CTX_DATA, err) != 0)
				return -1;
			r->used = 0;
		}
	}
	return 0;
}

static int
rebuffer_finish(pv_stream *s, pv_err *err)
{
	rebuffer_stage *r = (rebuffer_stage *) s;

	if (r->used > 0 && pv_stream_forward(s, NULL, r->buf, r->used, PV_CTX_DATA, err) != 0)
		return -1;
	r->used = 0;
	return pv_stream_finish_next(s, err);
}

static void
rebuffer_free(pv_stream *s)
{
	rebuffer_stage *r = (rebuffer_stage *) s;

	pv_stream_free_next(s);
	sodium_memzero(r->buf, r->block);
	free(r->buf);
	free(r);
}

static const pv_stream_ops rebuffer_ops = {rebuffer_write, rebuffer_finish, rebuffer_free};

pv_stream *
pv_stream_rebuffer_new(pv_stream *next, size_t block_size)
{
	rebuffer_stage *r = pv_calloc(1, sizeof(*r));

	r->base.ops = &rebuffer_ops;
	r->base.next = next;
	r->block = block_size;
	r->buf = pv_malloc(block_size);
	return &r->base;
}

int
pv_stream_put_all(pv_stream *s, const void *data, size_t len, pv_err *err)
{
	int			rc = 0;

	if (s == NULL)
		return -1;
	if (pv_stream_write(s, data, len, err) != 0 || pv_stream_finish(s, err) != 0)
		rc = -1;
	pv_stream_free(s);
	return rc;
}
