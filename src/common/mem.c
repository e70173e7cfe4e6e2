/*
 * mem.c - allocation helpers and pv_buf
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/mem.h"

void
pv_out_of_memory(const char *what)
{
	fprintf(stderr, "pgvault: error: out of memory (%s)\n", what);
	exit(1);
}

static void
out_of_memory(size_t size)
{
	char		what[64];

	snprintf(what, sizeof(what), "allocating %zu bytes", size);
	pv_out_of_memory(what);
}

void *
pv_secure_malloc(size_t size)
{
	void	   *p = sodium_malloc(size);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *
pv_malloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *
pv_malloc_aligned(size_t align, size_t size)
{
	void	   *p = NULL;

	if (posix_memalign(&p, align, size ? size : 1) != 0)
		out_of_memory(size);
	return p;
}

void *
pv_calloc(size_t n, size_t size)
{
	void	   *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory(n * size);
	return p;
}

void *
pv_realloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

char *
pv_strdup(const char *s)
{
	return pv_strndup(s, strlen(s));
}

char *
pv_strndup(const char *s, size_t n)
{
	size_t		len = strnlen(s, n);
	char	   *p = pv_malloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
pv_asprintf(const char *fmt,...)
{
	va_list		ap;
	char	   *s;

	va_start(ap, fmt);
	s = pv_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

char *
pv_vasprintf(const char *fmt, va_list ap)
{
	pv_buf		b;

	pv_buf_init(&b);
	pv_buf_vprintf(&b, fmt, ap);
	return (char *) pv_buf_steal(&b, NULL);
}

void
pv_buf_init(pv_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
pv_buf_reserve(pv_buf *b, size_t extra)
{
	size_t		need = b->len + extra + 1;
	size_t		cap;

	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = pv_realloc(b->data, cap);
	if (b->cap == 0)
		b->data[0] = '\0';
	b->cap = cap;
}

void
pv_buf_append(pv_buf *b, const void *data, size_t len)
{
	pv_buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
pv_buf_append_str(pv_buf *b, const char *s)
{
	pv_buf_append(b, s, strlen(s));
}

void
pv_buf_vprintf(pv_buf *b, const char *fmt, va_list ap)
{
	va_list		ap2;
	int			n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	pv_buf_reserve(b, (size_t) n);
	vsnprintf((char *) b->data + b->len, (size_t) n + 1, fmt, ap);
	b->len += (size_t) n;
}

void
pv_buf_printf(pv_buf *b, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	pv_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
pv_buf_reset(pv_buf *b)
{
	if (b->data != NULL)
		sodium_memzero(b->data, b->len);
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
pv_buf_free(pv_buf *b)
{
	if (b->data != NULL)
	{
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	pv_buf_init(b);
}

uint8_t *
pv_buf_steal(pv_buf *b, size_t *len)
{
	uint8_t    *p;

	if (b->data == NULL)
		pv_buf_reserve(b, 0);
	p = b->data;
	if (len != NULL)
		*len = b->len;
	pv_buf_init(b);
	return p;
}
