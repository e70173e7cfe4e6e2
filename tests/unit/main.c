/*
 * main.c - the one unit test runner: runs suite_<module>() for every module
 *
 * CK_RUN_SUITE / CK_RUN_CASE select suites and cases (Check's own variables);
 * CK_FORK=no runs in one process (for valgrind).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>
#include <sodium.h>

#include "suites.h"

int
main(void)
{
	SRunner    *sr;
	int			failed;

	if (sodium_init() < 0)
	{
		fprintf(stderr, "could not initialize libsodium\n");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sr = srunner_create(suite_common());
	srunner_add_suite(sr, suite_config());
	srunner_add_suite(sr, suite_stream());
	srunner_add_suite(sr, suite_crypto());
	srunner_add_suite(sr, suite_storage());
	srunner_add_suite(sr, suite_repo());
	srunner_add_suite(sr, suite_pack());
	srunner_add_suite(sr, suite_s3());
	srunner_add_suite(sr, suite_pg());
	srunner_add_suite(sr, suite_tar());
	srunner_add_suite(sr, suite_wal());
	srunner_add_suite(sr, suite_restore());
	srunner_add_suite(sr, suite_cron());
	srunner_add_suite(sr, suite_retention());
	srunner_add_suite(sr, suite_drill());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
