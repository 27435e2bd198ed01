# sluice -- a stream-processing host: C on libuv, pipelines in LuaJIT.
#
#   make            build ./sluice
#   make run        install missing packages, build, run the demo pipeline
#   make test       install missing packages, build, lint, run every spec (plain and sanitized)
#   make lint       luacheck over lua/, tests/ and scripts/ (settings: tests/luacheckrc)
#   make bench      the benchmark workloads (scripts/bench/)
#   make stress     kill -9 loops, overload, bad input under ASan, fuzzing: a table of losses
#                   and crashes (scripts/stress/, about 10 minutes; not part of make test)
#   make docs       docs/demo-graph.svg: the demo's operator graph (Graphviz's dot)
#   make install    PREFIX=/usr/local: bin/sluice, share/sluice/lua, the man page and the
#                   bash completion
#   make asan       ./sluice-asan, built with AddressSanitizer and UBSan
#   V=1             show full commands

PREFIX   ?= /usr/local
CC       ?= cc
PKGS     := luajit libuv msgpack rdkafka hiredis libcurl
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
# Debian's http-parser (the HTTP source and --metrics) ships no pkg-config file.
LIBS    += -lhttp_parser
# GNU readline, for the REPL's line editing (host/lineedit.c); its headers need no flags.
LIBS    += $(shell pkg-config --libs readline 2>/dev/null || echo -lreadline)
# zlib, for the gzip of the Fluent forward protocol's CompressedPackedForward (forward.c).
LIBS    += -lz
# mimalloc, the Lua states' heap (host/vm.c says why); Debian's ships no pkg-config file.
LIBS    += -lmimalloc
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

.PHONY: all run test bench stress install uninstall asan ctests deps clean fuzz lint docs kafka-mock

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

# C unit tests of the codecs and framing, and of the primitives, built with the sanitizers.
CODEC_OBJ := $(patsubst host/%.c,build/asan/%.o,host/buf.c host/framing.c $(wildcard host/codec_*.c) \
             host/schema.c $(wildcard host/typed_*.c))
PRIMS_OBJ := $(patsubst host/%.c,build/asan/%.o,host/timeq.c host/window.c host/agg.c host/sketch_hll.c host/sketch_quantile.c)

build/codec_test: tests/c/codec_test.c tests/c/check.h $(CODEC_OBJ)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -Ihost -o $@ $(filter %.c %.o,$^) $(LIBS)

build/typed_csv_mpack_test: tests/c/typed_csv_mpack_test.c tests/c/check.h $(CODEC_OBJ)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -Ihost -o $@ $(filter %.c %.o,$^) $(LIBS)

# The typed JSON codec (typed_json.c) against the table one; typed_check.h is shared with
# its fuzz target.
build/typed_test: tests/c/typed_test.c tests/c/typed_check.h tests/c/check.h $(CODEC_OBJ)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -Ihost -o $@ $(filter %.c %.o,$^) $(LIBS)

build/prims_test: tests/c/prims_test.c $(PRIMS_OBJ)
	$(call say,CC-ASAN,$<)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -Ihost -o $@ $^ -lm

ctests: build/codec_test build/prims_test build/typed_test build/typed_csv_mpack_test

# The Kafka cluster the Kafka specs start, and scripts/kafka-local: librdkafka's mock
# brokers on loopback (tests/kafka/mock_cluster.c).
build/kafka_mock: tests/kafka/mock_cluster.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -o $@ $< $(shell pkg-config --libs rdkafka)

kafka-mock: build/kafka_mock

# libFuzzer targets for the line, CSV, JSON and msgpack framers and decoders, the typed
# JSON, CSV and msgpack codecs, the reader's framing and the HTTP source's request parsing
# (clang), each run for FUZZ_SECONDS under AddressSanitizer and UBSan from its corpus in
# tests/fuzz/. They link the buffer, the codecs (typed ones and schema.c too), framing.c
# and http_request.c (with http-parser), no more.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_NAMES   := lines json csv mpack reader http forward typed_json typed_csv typed_mpack
FUZZ_BINS    := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
FUZZ_SRC     := host/buf.c host/framing.c $(wildcard host/codec_*.c) host/http_request.c host/forward.c \
                host/schema.c $(wildcard host/typed_*.c)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h tests/c/typed_check.h $(FUZZ_SRC) \
                   $(wildcard host/*.h)
	@mkdir -p $(@D)
	$(call say,FUZZ-CC,$<)$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined -Ihost $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
	  -o $@ $< $(FUZZ_SRC) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm -lz

fuzz: $(FUZZ_BINS)
	$(Q)for n in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus-$$n; \
	  echo "== fuzz $$n: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=0 build/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -print_final_stats=0 -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	    >build/fuzz/$$n.log 2>&1 || { tail -40 build/fuzz/$$n.log; exit 1; }; \
	  tail -1 build/fuzz/$$n.log; \
	done

deps:
	$(Q)sh scripts/deps.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./sluice run scripts/demo.lua

lint:
	$(call say,LINT,'lua tests scripts')luacheck --config tests/luacheckrc --quiet --codes --no-color lua tests scripts

test: deps
	$(Q)$(MAKE) --no-print-directory lint all asan ctests kafka-mock
	$(Q)if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(TEST_FUZZ_SECONDS),10); \
	else echo "fuzz: $(FUZZ_CC) not found, fuzz targets skipped"; fi
	$(Q)sh tests/run.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)sh scripts/bench/run.sh

stress: deps
	$(Q)$(MAKE) --no-print-directory all asan
	$(Q)sh scripts/stress/run.sh

# The picture of scripts/demo.lua's graph that README.md shows, as `sluice graph --format
# dot` draws it.
docs: docs/demo-graph.svg

docs/demo-graph.svg: sluice scripts/demo.lua lua/sluice/graph.lua
	$(call say,DOT,$@)./sluice graph scripts/demo.lua --format dot >$@.dot
	$(Q)dot -Tsvg $@.dot -o $@ && rm -f $@.dot

install: sluice
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sluice/lua/sluice \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 sluice $(DESTDIR)$(PREFIX)/bin/sluice
	install -m 644 lua/sluice/*.lua $(DESTDIR)$(PREFIX)/share/sluice/lua/sluice/
	install -m 644 docs/sluice.1 $(DESTDIR)$(PREFIX)/share/man/man1/sluice.1
	install -m 644 scripts/sluice.bash-completion \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sluice

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/sluice $(DESTDIR)$(PREFIX)/share/sluice \
	  $(DESTDIR)$(PREFIX)/share/man/man1/sluice.1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sluice

clean:
	rm -rf build sluice sluice-asan

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d)
