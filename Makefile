# taskpool: build, test, run, bench.  `make help` lists the targets.
#
# SANITIZE=1 builds everything with AddressSanitizer + UBSan into build-asan/.

CC       ?= cc
PKGS      = libmicrohttpd libcjson sqlite3
CFLAGS_W  = -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Werror
CFLAGS   ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Ilib
LIB_LIBS  = -lcjson -lsqlite3 -lpthread -lm
LDLIBS    = -lmicrohttpd $(LIB_LIBS)

# Kept apart from CFLAGS, so that `make test CFLAGS=...` still sanitizes.
ifeq ($(SANITIZE),1)
BUILD     = build-asan
SAN_FLAGS = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BIN       = $(BUILD)/taskpoold
else
BUILD     = build
BIN       = bin/taskpoold
endif

LIB_SRC    = $(sort $(wildcard lib/*.c))
SERVER_SRC = $(sort $(wildcard server/*.c))
UNIT_SRC   = $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJ    = $(LIB_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ = $(SERVER_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Precompressed siblings of the dashboard's text files: served when the client
# accepts gzip, so the daemon needs no zlib at run time.
WEB_TEXT   = $(shell find web -type f \( -name '*.html' -o -name '*.js' -o -name '*.mjs' -o -name '*.css' -o -name '*.svg' -o -name '*.json' \) 2>/dev/null)
WEB_GZ     = $(WEB_TEXT:%=%.gz)

DEPS_APT  = build-essential pkg-config libmicrohttpd-dev libcjson-dev libsqlite3-dev \
            libcmocka-dev sqlite3 curl python3

PORT ?= 8080
DB   ?= ./taskpool.db

.PHONY: all run test unit integration browser screenshots asan bench deps test-deps clean help

all: $(BIN) $(WEB_GZ)

%.gz: %
	gzip -9 -n -k -f $<

help:
	@echo "make run         install missing packages, build, serve on 127.0.0.1:$(PORT) with $(DB)"
	@echo "make test        install missing packages, build, run every test (also under ASan+UBSan)"
	@echo "make bench       throughput / latency benchmark of the HTTP task path"
	@echo "make screenshots run the browser test and refresh the README's screenshots"
	@echo "make clean       remove build outputs"

# Installs only what is missing, so a second run costs one dpkg query.
deps:
	@missing=$$(for p in $(DEPS_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Browser-test tools are checked by command, not package: node and npm may
# come from another packaging of Node.js than Debian's, and must not be replaced.
test-deps: deps
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BIN): $(SERVER_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_W) $(CFLAGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<

# lib/ never touches HTTP: its tests link without libmicrohttpd.
$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_W) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDFLAGS) $(LIB_LIBS) -lcmocka

run: deps
	@$(MAKE) --no-print-directory all
	./bin/taskpoold --listen 127.0.0.1:$(PORT) --db $(DB) $(ARGS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: $(BIN)
	TASKPOOLD=$(abspath $(BIN)) python3 tests/integration/run.py

asan:
	@$(MAKE) --no-print-directory SANITIZE=1 unit integration

browser: $(BIN)
	@cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent; }
	TASKPOOLD=$(abspath $(BIN)) node tests/browser/dashboard.test.mjs

# The browser test, saving its screenshots where the README shows them.
screenshots: test-deps $(BIN)
	@cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent; }
	TASKPOOL_SCREENSHOTS=$(abspath docs/screenshots) TASKPOOLD=$(abspath $(BIN)) node tests/browser/dashboard.test.mjs

test: test-deps
	@$(MAKE) --no-print-directory all unit integration
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory browser

bench: deps
	@$(MAKE) --no-print-directory all
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	TASKPOOLD=$(abspath $(BIN)) python3 bench/bench.py

clean:
	rm -rf build build-asan bin
	find web -name '*.gz' -delete

-include $(shell find build build-asan -name '*.d' 2>/dev/null)
