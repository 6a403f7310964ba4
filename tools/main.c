/* SPDX-License-Identifier: MIT */
/*
 * viommu — the command-line face of libviommu: one file per subcommand,
 * this one only dispatches.
 */
#include <stdio.h>
#include <string.h>

#include <viommu/viommu.h>

#include "commands.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "workload", cmd_workload,
	  "a simulated VM: streaming DMA through both kinds of consumer" },
	{ "run", cmd_run,
	  "play a scenario file and print what consumers hear" },
	{ "bench", cmd_bench, "measure the design against QEMU's structure" },
	{ "demo", cmd_demo,
	  "show the change engine on a small built-in guest" },
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: viommu [--help] [--version] COMMAND [ARGS]\n\n"
		     "commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out, "\n'viommu COMMAND --help' tells more about one.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("viommu %s\n", viommu_version());
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "viommu: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
