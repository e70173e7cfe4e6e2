/*
 * storage_conformance.h - the storage conformance suite every driver must pass
 *
 * pv_conformance_tcase(name, open_fn, close_fn) returns a Check TCase whose
 * tests each call open_fn() to get a fresh, EMPTY storage (a new directory
 * or a new S3 prefix) and close_fn(st) afterwards.
 */
#ifndef PV_TESTS_STORAGE_CONFORMANCE_H
#define PV_TESTS_STORAGE_CONFORMANCE_H

#include <check.h>

#include "storage/storage.h"

typedef pv_storage *(*pv_conformance_open_fn) (void);
typedef void (*pv_conformance_close_fn) (pv_storage *st);

extern TCase *pv_conformance_tcase(const char *name, pv_conformance_open_fn open_fn,
								   pv_conformance_close_fn close_fn);

#endif
