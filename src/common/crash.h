/*
 * crash.h - crash points for the crash-matrix tests (docs/reliability.md)
 *
 * pgvault passes a named crash point at every step that changes durable
 * state: before and after each object is written, at each part of an S3
 * multipart upload, before each delete, and at each step of a restore.
 * Normally a crash point does nothing but a cached check. Two environment
 * variables, meant for tests only, turn them on:
 *
 *   PGVAULT_CRASH_TRACE=FILE  append the name of every point passed to FILE,
 *                             one line each, in the order they are passed
 *   PGVAULT_CRASH_AT=SPEC     SIGKILL the whole process at a point: SPEC is N
 *                             (the N-th point passed, counting from 1), NAME
 *                             (the first point of that name) or NAME#N (the
 *                             N-th time that name is passed)
 *
 * Names are "<step>" or "<step>:<object class>", the class being the first
 * component of the object's name (packs, index, backups, wal, ...), e.g.
 * "put-commit:backups" before a backup's manifest becomes visible.
 */
#ifndef PV_COMMON_CRASH_H
#define PV_COMMON_CRASH_H

#include "common/err.h"

/* A crash point; key (may be NULL) supplies the object class. */
extern void pv_crash_point(const char *step, const char *key);

/* PV_E_USAGE naming the value when PGVAULT_CRASH_AT is set but malformed. */
extern int	pv_crash_check(pv_err *err);

#endif
