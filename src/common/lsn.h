/*
 * lsn.h - WAL positions (LSNs) as PostgreSQL writes them: "16/B374D848"
 *
 * Every module that reads or shows an LSN (manifests, restore targets,
 * reports, the replication protocol) uses these two; none needs libpq for it.
 */
#ifndef PV_COMMON_LSN_H
#define PV_COMMON_LSN_H

#include <stddef.h>
#include <stdint.h>

/* Longest text pv_lsn_format writes, with its NUL: "FFFFFFFF/FFFFFFFF". */
#define PV_LSN_TEXT_MAX 18

/*
 * "0/3000028" -> 0x3000028: 1 to 8 hex digits (either case), '/', 1 to 8
 * hex digits, nothing else. -1 (and *lsn untouched) otherwise.
 */
extern int	pv_lsn_parse(const char *s, uint64_t *lsn);

/* 0x16B374D848 -> "16/B374D848" (upper case, as PostgreSQL prints it; len >= PV_LSN_TEXT_MAX). */
extern void pv_lsn_format(uint64_t lsn, char *buf, size_t len);

#endif
