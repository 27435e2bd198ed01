# sluice -- a stream-processing host: C on libuv, pipelines in LuaJIT.
#
#   make            build ./sluice
#   make run        install missing packages, build, run the demo pipeline
#   make test       install missing packages, build, run every spec (plain and sanitized)
#   make bench      the benchmark workloads (scripts/bench/)
#   make install    PREFIX=/usr/local: bin/sluice and share/sluice/lua
#   make asan       ./sluice-asan, built with AddressSanitizer and UBSan
#   V=1             show full commands

PREFIX   ?= /usr/local
CC       ?= cc
PKGS     := luajit libuv msgpack
VERSION  := 0.1.0

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(CI),true)
WARN     += -Werror
endif
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -MMD -MP \
             -DSL_VERSION='"$(VERSION)"' -DSL_LUADIR='"$(PREFIX)/share/sluice/lua"' \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
# LuaJIT's FFI finds the host's exported sl_* functions in the executable itself.
LDFLAGS  += -Wl,-E

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRC      := $(wildcard host/*.c)
OBJ      := $(SRC:host/%.c=build/rel/%.o)
ASAN_OBJ := $(SRC:host/%.c=build/asan/%.o)

ifneq ($(V),1)
Q        := @
say       = @printf '  %-6s %s\n' $(1) $(2);
endif

.PHONY: all run test bench install uninstall asan ctests deps clean

all: sluice

sluice: $(OBJ)
	$(call say,LINK,$@)$(CC) -o $@ $^ $(LDFLAGS) $(LIBS)

sluice-asan: $(ASAN_OBJ)
	$(call say,LINK,$@)$(CC) -fsanitize=address,undefined -o $@ $^ $(LDFLAGS) $(LIBS)

build/rel/%.o: host/%.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/asan/%.o: host/%.c
	@mkdir -p $(@D)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

asan: sluice-asan

# C unit tests of the codecs and primitives, built with the sanitizers.
CODEC_OBJ := $(patsubst host/%.c,build/asan/%.o,host/buf.c $(wildcard host/codec_*.c))
PRIMS_OBJ := $(patsubst host/%.c,build/asan/%.o,host/timeq.c host/window.c host/agg.c host/sketch_hll.c host/sketch_quantile.c)

build/codec_test: tests/c/codec_test.c $(CODEC_OBJ)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -Ihost -o $@ $^ $(LIBS)

build/prims_test: tests/c/prims_test.c $(PRIMS_OBJ)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -Ihost -o $@ $^ -lm

ctests: build/codec_test build/prims_test

deps:
	$(Q)sh scripts/deps.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./sluice run scripts/demo.lua

test: deps
	$(Q)$(MAKE) --no-print-directory all asan ctests
	$(Q)sh tests/run.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)sh scripts/bench/run.sh

install: sluice
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sluice/lua/sluice
	install -m 755 sluice $(DESTDIR)$(PREFIX)/bin/sluice
	install -m 644 lua/sluice/*.lua $(DESTDIR)$(PREFIX)/share/sluice/lua/sluice/

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/sluice $(DESTDIR)$(PREFIX)/share/sluice

clean:
	rm -rf build sluice sluice-asan

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d)
