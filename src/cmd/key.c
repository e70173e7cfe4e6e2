/*
 * key.c - pgvault key add | list | remove: manage key slots
 *
 * Every slot wraps the same master key, so adding or removing a slot never
 * rewrites data: that is how a passphrase is changed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd/cmd.h"

static const char usage_text[] =
	"Usage:\n"
	"  pgvault key add (--passphrase-file FILE | --passphrase-command CMD |\n"
	"                   --passphrase-env VAR | --keyfile FILE | --generate-keyfile FILE)\n"
	"  pgvault key list [--json]\n"
	"  pgvault key remove SLOT\n\n"
	"Key slots wrap the repository's master key. The repository is unlocked with the\n"
	"configured secret; \"add\" wraps the key with a new secret in a new slot.\n"
	"Changing a passphrase = add a slot for the new one, then remove the old slot.\n"
	"Removing the last slot is refused. Secrets are never taken from the command line.\n";

static int
key_add(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"passphrase-file", required_argument, NULL, 'f'},
		{"passphrase-command", required_argument, NULL, 'x'},
		{"passphrase-env", required_argument, NULL, 'e'},
		{"keyfile", required_argument, NULL, 'k'},
		{"generate-keyfile", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	int			which = 0;
	const char *arg = NULL;
	pv_secret	secret = {0};
	pv_repo    *repo = NULL;
	char		slot[PV_SLOT_ID_LEN + 1];
	pv_err		err;
	int			rc;

	while ((c = pv_cmd_getopt("key add", argc, argv, "h", opts)) != -1)
	{
		if (c == 'h')
		{
			fputs(usage_text, stdout);
			return PV_EXIT_OK;
		}
		if (c == '?')
			return PV_EXIT_USAGE;
		if (which != 0)
			return pv_cmd_usage_error("key add", "give exactly one new secret");
		which = c;
		arg = optarg;
	}
	if (which == 0)
		return pv_cmd_usage_error("key add", "name the new secret (e.g. --passphrase-file FILE)");
	if (optind < argc)
		return pv_cmd_usage_error("key add", "unexpected argument \"%s\"", argv[optind]);
	pv_err_clear(&err);
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
		return rc;
	if (repo->cipher == PV_CIPHER_NONE)
	{
		pv_repo_free(repo);
		pv_err_set(&err, PV_E_USAGE, 0, "the repository is not encrypted (cipher none): it has no key slots");
		return pv_cmd_fail(&err);
	}
	switch (which)
	{
		case 'f':
			rc = pv_secret_from_file(arg, PV_SECRET_PASSPHRASE, &secret, &err);
			break;
		case 'x':
			rc = pv_secret_from_command(arg, &secret, &err);
			break;
		case 'e':
			rc = pv_secret_from_env(arg, &secret, &err);
			break;
		case 'k':
			rc = pv_secret_from_file(arg, PV_SECRET_KEYFILE, &secret, &err);
			break;
		default:
			rc = pv_keyfile_generate(arg, &err);
			if (rc == 0)
				rc = pv_secret_from_file(arg, PV_SECRET_KEYFILE, &secret, &err);
			break;
	}
	if (rc == 0)
		rc = pv_repo_key_add(repo, &secret, pv_kdf_params_for(ctx->cfg.kdf), slot, &err);
	pv_secret_free(&secret);
	pv_repo_free(repo);
	if (rc != 0)
		return pv_cmd_fail(&err);
	printf("added key slot %s\n", slot);
	return PV_EXIT_OK;
}

static int
key_list(pv_cmd_ctx *ctx, int argc, char **argv)
{
	bool		json;
	pv_repo    *repo;
	pv_repo_slot *slots;
	size_t		n;
	pv_err		err;
	int			rc;

	if ((rc = pv_cmd_json_open(ctx, "key list", argc, argv, usage_text, &json, &repo)) != -1)
		return rc;
	pv_err_clear(&err);
	if (pv_repo_key_list(repo, &slots, &n, &err) != 0)
	{
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	if (json)
	{
		json_t	   *arr = json_array();
		char	   *text;

		for (size_t i = 0; i < n; i++)
		{
			json_t	   *o = json_object();

			json_object_set_new(o, "slot", json_string(slots[i].id));
			json_object_set_new(o, "type", json_string(slots[i].info.type));
			json_object_set_new(o, "created", json_string(slots[i].info.created));
			if (slots[i].info.memlimit)
			{
				json_object_set_new(o, "kdf_opslimit", json_integer((json_int_t) slots[i].info.opslimit));
				json_object_set_new(o, "kdf_memlimit", json_integer((json_int_t) slots[i].info.memlimit));
			}
			json_array_append_new(arr, o);
		}
		text = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
		json_decref(arr);
	}
	else
	{
		printf("%-16s  %-10s  %-20s  %s\n", "SLOT", "TYPE", "CREATED", "KDF");
		for (size_t i = 0; i < n; i++)
		{
			char		kdf[64] = "-";

			if (slots[i].info.memlimit)
				snprintf(kdf, sizeof(kdf), "argon2id ops=%llu mem=%lluMiB",
						 (unsigned long long) slots[i].info.opslimit,
						 (unsigned long long) (slots[i].info.memlimit >> 20));
			printf("%-16s  %-10s  %-20s  %s\n", slots[i].id, slots[i].info.type, slots[i].info.created, kdf);
		}
	}
	free(slots);
	pv_repo_free(repo);
	return PV_EXIT_OK;
}

static int
key_remove(pv_cmd_ctx *ctx, int argc, char **argv)
{
	pv_repo    *repo = NULL;
	pv_err		err;
	const char *none;
	int			rc;

	if ((rc = pv_cmd_simple_options("key remove", argc, argv, NULL, NULL, usage_text, &none)) != -1)
		return rc;
	if (optind + 1 != argc)
		return pv_cmd_usage_error("key remove", "name exactly one key slot");
	/* proving knowledge of a working secret is required to change the slots */
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	if (pv_repo_key_remove(repo, argv[optind], &err) != 0)
	{
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	pv_repo_free(repo);
	printf("removed key slot %s\n", argv[optind]);
	return PV_EXIT_OK;
}

int
cmd_key(pv_cmd_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
	{
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	optind = 1;
	if (strcmp(argv[1], "add") == 0)
		return key_add(ctx, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return key_list(ctx, argc - 1, argv + 1);
	if (strcmp(argv[1], "remove") == 0)
		return key_remove(ctx, argc - 1, argv + 1);
	return pv_cmd_usage_error("key", "unknown subcommand \"%s\" (use add, list or remove)", argv[1]);
}
