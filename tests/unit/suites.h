/*
 * suites.h - every Check suite the unit test runner runs
 */
#ifndef PV_TESTS_SUITES_H
#define PV_TESTS_SUITES_H

#include <check.h>

extern Suite *suite_common(void);
extern Suite *suite_config(void);
extern Suite *suite_stream(void);
extern Suite *suite_crypto(void);
extern Suite *suite_storage(void);
extern Suite *suite_repo(void);
extern Suite *suite_pack(void);
extern Suite *suite_s3(void);
extern Suite *suite_pg(void);
extern Suite *suite_tar(void);
extern Suite *suite_wal(void);
extern Suite *suite_restore(void);
extern Suite *suite_cron(void);
extern Suite *suite_retention(void);
extern Suite *suite_drill(void);

#endif
