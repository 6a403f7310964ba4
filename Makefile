# SPDX-License-Identifier: MIT
#
# Thin wrapper around Meson so a fresh Debian 12 machine needs two commands:
# `make run` and `make test`.  Meson and Ninja do the real work; this file
# only installs missing packages and picks build directories.

# Debian packages the build, the tests and the checks need.  Keep this on one
# line: .ci/run reads it from here.
DEPS := make python3 meson ninja-build pkg-config gcc libcmocka-dev valgrind clang libclang-rt-14-dev libglib2.0-dev clang-format

BUILD      ?= build
ASAN_BUILD ?= build-asan
# Extra options for `meson setup` / `meson configure` of $(BUILD), e.g.
# `make test MESON_OPTS=-Dwerror=true` (what `make check` and CI use).
MESON_OPTS ?=

ASAN_OPTIONS  ?= detect_leaks=1
UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1

VALGRIND := valgrind --leak-check=full \
	--show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible \
	--error-exitcode=1 --quiet

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps print-deps configure build run test asan valgrind \
	format-check check clean

all: build

# Install only what is missing, so a repeated run is fast and works offline.
deps:
	@missing=; \
	for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | \
			grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing missing Debian packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $$missing; \
	fi

print-deps:
	@echo $(DEPS)

# Set up $(BUILD) once; later runs only apply MESON_OPTS, if any (Ninja
# re-runs Meson by itself when a meson.build changes).
configure: deps
	@if [ -f $(BUILD)/meson-private/coredata.dat ]; then \
		if [ -n "$(MESON_OPTS)" ]; then \
			echo "meson configure $(BUILD) $(MESON_OPTS)"; \
			meson configure $(BUILD) $(MESON_OPTS); \
		fi; \
	else \
		echo "meson setup $(BUILD) $(MESON_OPTS)"; \
		meson setup $(BUILD) $(MESON_OPTS); \
	fi

build: configure
	meson compile -C $(BUILD)

run: build
	./$(BUILD)/tools/viommu workload

test: build
	meson test -C $(BUILD) --print-errorlogs

asan: deps
	@if [ ! -f $(ASAN_BUILD)/meson-private/coredata.dat ]; then \
		echo "meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false"; \
		meson setup $(ASAN_BUILD) \
			-Db_sanitize=address,undefined -Db_lundef=false; \
	fi
	meson compile -C $(ASAN_BUILD)
	ASAN_OPTIONS=$(ASAN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_OPTIONS) \
		meson test -C $(ASAN_BUILD) --print-errorlogs

# The unit suite under valgrind: any leak or memory error fails the test.
# Meson names its log after the wrapper, $(BUILD)/meson-logs/testlog-valgrind.*,
# so it does not overwrite the one from `make test`.
valgrind: build
	meson test -C $(BUILD) --suite unit --print-errorlogs -t 10 \
		--wrap='$(VALGRIND)'

format-check: deps
	@if [ -f .clang-format ]; then \
		bash scripts/format --check; \
	else \
		echo "no .clang-format: skipping the format check"; \
	fi

# Everything a pre-push check should do (scripts/check runs this).
check:
	$(MAKE) test MESON_OPTS=-Dwerror=true
	$(MAKE) asan
	$(MAKE) valgrind
	$(MAKE) format-check

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
