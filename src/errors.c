/* SPDX-License-Identifier: MIT */
/*
 * Error names and detailed messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

/* The errnos libviommu returns, with the words we want people to read. */
#define VIOMMU_ERRNO_MAP(X)                                                    \
	X(EINVAL, "invalid argument")                                          \
	X(ENOMEM, "out of memory")                                             \
	X(EBUSY, "busy: called from inside a notification")                    \
	X(ENOTSUP, "not supported by this IOMMU model")                        \
	X(ENOSPC, "no space left")                                             \
	X(EEXIST, "already exists")                                            \
	X(ENOENT, "not found")                                                 \
	X(EIO, "the model failed")                                             \
	X(ERANGE, "out of range")                                              \
	X(EFAULT, "bad address")                                               \
	X(ENODEV, "no such device")                                            \
	X(E2BIG, "too big")                                                    \
	X(EROFS, "read-only")

const char *viommu_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
#define VIOMMU_ERRNO_CASE(name, text)                                          \
	case -name:                                                            \
		return text;
		VIOMMU_ERRNO_MAP(VIOMMU_ERRNO_CASE)
#undef VIOMMU_ERRNO_CASE
	default:
		return "unknown error";
	}
}

const char *viommu_version(void)
{
	return VIOMMU_VERSION_STRING;
}

int viommu__error(struct viommu_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}
