/*
 * testutil.h - helpers shared by the unit tests
 */
#ifndef PV_TESTS_TESTUTIL_H
#define PV_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"

/* A fresh empty temp directory (caller frees the string and removes the tree). */
extern char *tu_tempdir(void);
extern void tu_rmtree(const char *path);
/* Deterministic pseudo-random bytes (xorshift) for reproducible tests. */
extern void tu_fill(uint8_t *buf, size_t len, uint64_t seed);
/* Write a file with the given mode. */
extern void tu_write_file(const char *path, const void *data, size_t len, int mode);
/* Path of a file under the source tree (PGVAULT_TEST_SRCDIR or the build-time srcdir). */
extern char *tu_srcpath(const char *rel);

#endif
