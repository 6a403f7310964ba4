#!/bin/sh
# SPDX-License-Identifier: MIT
# Every function the shared library exports is declared VIOMMU_EXPORT in a
# public header and called by the linkage test, and nothing else leaks out.
#   check_exports.sh LIBVIOMMU.so INCLUDE_DIR LINKAGE_TEST.c
set -eu
lib=$1 inc=$2 test=$3
status=0
exports=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort)
declared=$(grep -ho 'viommu_[a-z0-9_]*(' "$inc"/viommu/*.h | tr -d '(' | sort -u)
for sym in $exports; do
	case "$sym" in viommu_*) ;; *)
		echo "exported but not ours: $sym"; status=1; continue ;;
	esac
	if ! echo "$declared" | grep -qx "$sym"; then
		echo "exported but not in a public header: $sym"; status=1
	fi
	if ! grep -q "$sym(" "$test"; then
		echo "exported but not called by the linkage test: $sym"; status=1
	fi
done
[ "$status" -eq 0 ] && echo "$(echo "$exports" | wc -l) exports checked"
exit "$status"
