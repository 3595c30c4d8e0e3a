# aurora: C core + embedded Lua 5.4. See README.md.
# Every library comes from Debian packages through pkg-config; `make deps` installs them.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKGS := lua5.4 libcurl openssl libmicrohttpd yaml-0.1 gnutls
DEB_PKGS := gcc make pkg-config ca-certificates liblua5.4-dev libmicrohttpd-dev \
            libcurl4-openssl-dev libssl-dev libyaml-dev libgnutls28-dev wrk

OPT ?= -O2
BUILD ?= build
SANITIZE ?=
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
             -fno-strict-aliasing -Iinclude $(SANITIZE) \
             -DAURORA_SHARE_DIR='"$(PREFIX)/share/aurora"' \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm $(LDLIBS)
LDFLAGS_ALL = -rdynamic $(SANITIZE) $(LDFLAGS)

SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=$(BUILD)/%.o)
LIB_OBJS := $(filter-out $(BUILD)/main.o,$(OBJS))
CTESTS := $(patsubst tests/c/%.c,$(BUILD)/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps test ctests run install asan bench demo clean format fuzz

all: aurora

aurora: $(BUILD)/aurora
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/aurora: $(OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/%.o: src/%.c $(wildcard include/aurora/*.h) $(BUILD)/modules.inc $(wildcard src/lua/*.lua) | $(BUILD)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -I$(BUILD) -c -o $@ $<

# The list of Lua modules written in C: every src/X_lua.c defines luaopen_aurora_X.
$(BUILD)/modules.inc: $(wildcard src/*_lua.c) | $(BUILD)
	sed -n 's/^int luaopen_aurora_\([a-z_]*\)(lua_State \*L)$$/AURORA_MODULE(\1)/p' \
	    $(sort $(wildcard src/*_lua.c)) > $@.tmp && mv $@.tmp $@

$(BUILD)/libaurora.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/test_%: tests/c/test_%.c tests/c/check.h $(BUILD)/libaurora.a
	@echo "  LD $@"
	@$(CC) $(CFLAGS_ALL) -Itests/c $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libaurora.a $(LDLIBS_ALL)

$(BUILD):
	mkdir -p $@

ASAN_PKGS := clang libclang-rt-14-dev

# Installs the Debian packages that are missing; does nothing when all are there.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all installed"; fi

ctests: $(CTESTS)

test: deps conformance-deps
	$(MAKE) aurora ctests
	AURORA=./aurora BUILD=$(BUILD) sh tests/run

run: deps aurora
	./aurora serve --app lua

install: aurora
	install -D -m 0755 aurora $(DESTDIR)$(PREFIX)/bin/aurora
	mkdir -p $(DESTDIR)$(PREFIX)/share/aurora
	cp -R lua $(DESTDIR)$(PREFIX)/share/aurora/

# AddressSanitizer + UBSan build in its own directory, running the whole suite.
asan: deps conformance-deps
	$(MAKE) deps DEB_PKGS="$(ASAN_PKGS)"
	$(MAKE) BUILD=build-asan OPT=-O1 CC=clang \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    build-asan/aurora $(patsubst $(BUILD)/%,build-asan/%,$(CTESTS))
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    LSAN_OPTIONS=suppressions=tests/lsan.supp AURORA=build-asan/aurora BUILD=build-asan sh tests/run

# libFuzzer on the YAML loader and the kubeconfig reader (tests/fuzz/fuzz_kubeconfig.c): only the
# C core they need, no Lua, built with clang into build-fuzz/. New corpus entries go to
# build-fuzz/corpus; the seeds in tests/fuzz/corpus/kubeconfig stay as they are. Any crash,
# sanitizer report, leak, timeout or out-of-memory fails the target.
FUZZ_SECONDS ?= 600
FUZZ_DIR := build-fuzz
FUZZ_OBJS := $(patsubst %,$(FUZZ_DIR)/%.o,yaml kubeconfig crypto buf secret aurora)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
              -Iinclude $(FUZZ_SAN) $(shell pkg-config --cflags yaml-0.1 openssl 2>/dev/null)

$(FUZZ_DIR)/%.o: src/%.c $(wildcard include/aurora/*.h)
	@mkdir -p $(FUZZ_DIR)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_kubeconfig: tests/fuzz/fuzz_kubeconfig.c $(FUZZ_OBJS)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ \
	    $(shell pkg-config --libs yaml-0.1 openssl 2>/dev/null) -lm

fuzz: deps
	$(MAKE) deps DEB_PKGS="$(ASAN_PKGS)"
	$(MAKE) $(FUZZ_DIR)/fuzz_kubeconfig
	mkdir -p $(FUZZ_DIR)/corpus
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(FUZZ_DIR)/fuzz_kubeconfig -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -max_len=65536 -detect_leaks=1 -timeout=20 -print_final_stats=1 \
	    -dict=tests/fuzz/kubeconfig.dict -artifact_prefix=$(FUZZ_DIR)/ \
	    $(FUZZ_DIR)/corpus tests/fuzz/corpus/kubeconfig

bench: deps aurora
	sh bench/run

# Real clients (Azure CLI, python3-hvac, kubectl) against the Azure simulator; see tests/sim/README.md.
# kubectl: Debian's kubernetes-client only when no kubectl is installed (another package may own it).
CONFORMANCE_PKGS := azure-cli python3-hvac python3-msal python3-requests openssl curl

.PHONY: conformance conformance-deps
conformance-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(CONFORMANCE_PKGS)"
	@command -v kubectl >/dev/null || $(MAKE) --no-print-directory deps DEB_PKGS=kubernetes-client

conformance: deps conformance-deps aurora
	bash tests/conformance/run

# The simulator with the demo scenario and the app pointed at it (see tests/sim/README.md).
demo: deps aurora
	bash tests/sim/demo

clean:
	rm -rf build build-asan build-fuzz aurora

format:
	clang-format -i src/*.c include/aurora/*.h tests/c/*.c
