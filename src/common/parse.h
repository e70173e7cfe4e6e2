/*
 * parse.h - strict parsing of option and configuration values
 *
 * Each returns 0 on success, -1 with a message naming the value otherwise.
 * Trailing garbage, overflow and negative numbers are errors.
 */
#ifndef PV_COMMON_PARSE_H
#define PV_COMMON_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

/* "16MiB", "1 GiB", "512k", "1048576" (B, k/KiB/KB, M/MiB/MB, G/GiB/GB, T/TiB/TB; binary) */
extern int	pv_parse_size(const char *s, uint64_t *out, pv_err *err);
/* "14d", "36h", "90m", "30s", "2w", "500ms" -> milliseconds; a bare number is seconds */
extern int	pv_parse_duration_ms(const char *s, uint64_t *out, pv_err *err);
/* on/off, true/false, yes/no, 1/0 */
extern int	pv_parse_bool(const char *s, bool *out, pv_err *err);
/* decimal integer in [min, max] */
extern int	pv_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, pv_err *err);

/* Human-readable byte count: "1.5 GiB" (buffer of at least 32 bytes). */
extern const char *pv_format_size(uint64_t bytes, char *buf, size_t buflen);
/* Human-readable duration: "1h02m", "3.2s". */
extern const char *pv_format_duration_ms(uint64_t ms, char *buf, size_t buflen);

/* Lower-case hex encoding of len bytes into out (2*len+1 bytes). */
extern void pv_hex_encode(const uint8_t *data, size_t len, char *out);
/* Decode exactly len bytes from a 2*len hex string; -1 if malformed. */
extern int	pv_hex_decode(const char *hex, uint8_t *out, size_t len);

#endif
