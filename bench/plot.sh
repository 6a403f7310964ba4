#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Draw docs/performance-sync-replay.svg: sync and replay time against the
# mappings in effect, libviommu next to the GTree baseline.  Made by hand
# and committed; the suite never runs this.
#
#   bench/plot.sh [VIOMMU [DATA]]
#
# VIOMMU is the built command (default build/tools/viommu); DATA, when
# given, is the output of an earlier `viommu bench --sweep` to draw instead
# of measuring again.  Needs Debian's gnuplot (apt-get install gnuplot-nox).
set -euo pipefail

cd "$(dirname "$0")/.."
viommu=${1:-build/tools/viommu}
out=docs/performance-sync-replay.svg
data=$(mktemp)
trap 'rm -f "$data"' EXIT

if [ $# -ge 2 ]; then
	cp "$2" "$data"
else
	"$viommu" bench --sweep >"$data"
fi

gnuplot <<GP
set terminal svg size 800,520 dynamic font "sans,12"
set output "$out"
set title "VT-d domain invalidation and replay, 4 KiB mappings, medians"
set xlabel "mappings in effect"
set ylabel "total time (ms)"
set logscale xy
set format x "10^{%L}"
set format y "10^{%L}"
set key top left Left reverse
set xrange [700:1.5e6]
set grid
plot "$data" using 1:3 with linespoints lw 2 pt 7 title "libviommu: sync, every mapping retargeted", \
     "$data" using 1:2 with linespoints lw 2 pt 5 title "libviommu: sync, nothing changed", \
     "$data" using 1:4 with linespoints lw 2 pt 9 title "libviommu: replay", \
     "$data" using 1:(\$5+\$6) with linespoints lw 2 dt 2 pt 6 title "baseline GTree: insert + find each", \
     "$data" using 1:6 with linespoints lw 2 dt 2 pt 4 title "baseline GTree: find each"
GP
echo "wrote $out"
