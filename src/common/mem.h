/*
 * mem.h - allocation that never returns NULL, and a growable byte buffer
 *
 * pv_malloc and friends print one line and exit(1) when memory runs out:
 * there is no sensible way for a backup tool to go on without memory, and
 * every caller would otherwise repeat the same check.
 */
#ifndef PV_COMMON_MEM_H
#define PV_COMMON_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The one way out when memory runs out: "pgvault: error: out of memory
 * (what)" on stderr, then exit(1). pv_malloc and friends use it; so does
 * every caller of an allocator pgvault does not wrap (zstd contexts,
 * libcurl lists) when that allocator returns NULL.
 */
extern void pv_out_of_memory(const char *what) __attribute__((noreturn));

/*
 * sodium_malloc (guard pages, kept out of swap) for keys and secrets;
 * never NULL. Free with sodium_free.
 */
extern void *pv_secure_malloc(size_t size);

extern void *pv_malloc(size_t size);
/* align: a power of two, a multiple of sizeof(void *) (posix_memalign) */
extern void *pv_malloc_aligned(size_t align, size_t size);
extern void *pv_calloc(size_t n, size_t size);
extern void *pv_realloc(void *ptr, size_t size);
extern char *pv_strdup(const char *s);
extern char *pv_strndup(const char *s, size_t n);
/* Returns a newly allocated formatted string. */
extern char *pv_asprintf(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern char *pv_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A growable buffer; data is always NUL-terminated for convenience. */
typedef struct pv_buf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} pv_buf;

extern void pv_buf_init(pv_buf *b);
extern void pv_buf_reserve(pv_buf *b, size_t extra);
extern void pv_buf_append(pv_buf *b, const void *data, size_t len);
extern void pv_buf_append_str(pv_buf *b, const char *s);
extern void pv_buf_printf(pv_buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void pv_buf_vprintf(pv_buf *b, const char *fmt, va_list ap);
extern void pv_buf_reset(pv_buf *b);
/* Free the buffer's memory; wipes it first (it may have held plaintext). */
extern void pv_buf_free(pv_buf *b);
/* Hand the data over to the caller (who frees it); the buffer is left empty. */
extern uint8_t *pv_buf_steal(pv_buf *b, size_t *len);

#endif
