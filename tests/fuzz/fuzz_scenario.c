/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any bytes as a scenario file.  The parser must report
 * errors without crashing, leaking or hanging; a file it accepts is played
 * (with --verify) through both models, so hostile tables, odd ranges and
 * odd register writes reach the library too.  Output goes nowhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runner.h"
#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	char path[] = "/tmp/viommu-fuzz-XXXXXX";
	struct scenario sc;
	size_t i;
	int fd;

	if (!null)
		null = fopen("/dev/null", "w");
	fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	if (scenario_load(path, &sc, null) == 0) {
		bool reads_files = false;

		/* image file= would read whatever path the input names */
		for (i = 0; i < sc.n; i++)
			reads_files |= sc.cmds[i].kind == SC_IMAGE;
		if (!reads_files)
			scenario_run(&sc, null, null, true);
	}
	scenario_free(&sc);
	unlink(path);
	return 0;
}
