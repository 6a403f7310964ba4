/* SPDX-License-Identifier: MIT */
/*
 * Reading a fuzz input as a stream of little-endian numbers; missing bytes
 * read as zero, so every input is a complete program.
 */
#ifndef VIOMMU_FUZZ_INPUT_H
#define VIOMMU_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t take(struct input *in, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes; i++) {
		if (in->n) {
			v |= (uint64_t)in->p[0] << (8 * i);
			in->p++;
			in->n--;
		}
	}
	return v;
}

#endif
