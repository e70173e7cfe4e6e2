/*
 * init.c - pgvault init: create a repository
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"

static const char usage_text[] =
	"Usage: pgvault init [--generate-keyfile FILE] [--cipher none]\n\n"
	"Create a repository at the configured location ([repo] type, path or s3_*).\n"
	"The location must be empty. The repository is encrypted with a random master\n"
	"key, wrapped in a first key slot by the configured secret ([repo] keyfile,\n"
	"passphrase_file, passphrase_command or PGVAULT_PASSPHRASE).\n\n"
	"Options:\n"
	"      --generate-keyfile=FILE  write a new random 32-byte key file (mode 0600)\n"
	"                               and use it for the first key slot\n"
	"      --cipher=none            store data unencrypted (authenticated by\n"
	"                               checksums only); must be chosen explicitly\n"
	"  -h, --help                   print this help\n";

int
cmd_init(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"generate-keyfile", required_argument, NULL, 'g'},
		{"cipher", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *gen = NULL;
	pv_secret	secret = {0};
	pv_repo    *repo = NULL;
	char		slot[PV_SLOT_ID_LEN + 1] = "";
	pv_err		err;
	int			c;

	while ((c = pv_cmd_getopt("init", argc, argv, "h", opts)) != -1)
	{
		switch (c)
		{
			case 'g':
				gen = optarg;
				break;
			case 'C':
				if (pv_config_set(&ctx->cfg, "repo", "cipher", optarg, "--cipher", &err) != 0)
					return pv_cmd_fail(&err);
				break;
			case 'h':
				fputs(usage_text, stdout);
				return PV_EXIT_OK;
			default:
				return PV_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return pv_cmd_usage_error("init", "unexpected argument \"%s\"", argv[optind]);
	pv_err_clear(&err);
	if (ctx->cfg.cipher == 1)
	{
		if (gen != NULL)
			return pv_cmd_usage_error("init", "--generate-keyfile makes no sense with cipher none");
	}
	else if (gen != NULL)
	{
		/* the new keyfile becomes the only slot: another configured secret could not open it */
		if (pv_secret_sources(&ctx->cfg) > 0 &&
			!(ctx->cfg.keyfile != NULL && strcmp(ctx->cfg.keyfile, gen) == 0 && pv_secret_sources(&ctx->cfg) == 1))
		{
			pv_err_set(&err, PV_E_USAGE, 0, "--generate-keyfile conflicts with the secret already configured");
			pv_err_hint(&err, "remove passphrase_file/passphrase_command/PGVAULT_PASSPHRASE and set [repo] keyfile = %s", gen);
			return pv_cmd_fail(&err);
		}
		if (access(gen, F_OK) == 0)
			return pv_cmd_usage_error("init", "keyfile \"%s\" already exists; --generate-keyfile writes a new one", gen);
		/* written first (O_EXCL), removed again if the repository cannot be created */
		if (pv_keyfile_generate(gen, &err) != 0 ||
			pv_secret_from_file(gen, PV_SECRET_KEYFILE, &secret, &err) != 0)
			return pv_cmd_fail(&err);
	}
	else if (pv_secret_from_config(&ctx->cfg, &secret, &err) != 0)
		return pv_cmd_fail(&err);

	if (pv_repo_init(&ctx->cfg, ctx->cfg.cipher == 1 ? NULL : &secret, &repo, slot, &err) != 0)
	{
		pv_secret_free(&secret);
		if (gen != NULL)
			unlink(gen);
		return pv_cmd_fail(&err);
	}
	pv_secret_free(&secret);
	printf("created repository at %s\n", pv_storage_location(repo->storage));
	printf("  id        %s\n", repo->repo_id);
	if (repo->cipher == PV_CIPHER_NONE)
		printf("  cipher    none (NOT encrypted; integrity checksums only)\n");
	else
	{
		printf("  cipher    xchacha20-poly1305, key %s\n", repo->key_id);
		printf("  key slot  %s\n", slot);
		if (gen != NULL)
			printf("  keyfile   %s (keep a copy somewhere safe: without it the backups cannot be read)\n", gen);
	}
	pv_repo_free(repo);
	return PV_EXIT_OK;
}
