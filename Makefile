# abgate: build, run and test. GNU make; Go modules come from the module
# proxy on first use.

GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.Version=$(VERSION)
ARGS     ?=
FUZZTIME ?= 20s

# The race detector needs cgo and a C compiler; without them the tests run
# without it (and say so) rather than fail.
RACE := $(shell [ "$$($(GO) env CGO_ENABLED 2>/dev/null)" = 1 ] && command -v "$$($(GO) env CC 2>/dev/null)" >/dev/null 2>&1 && echo -race)

.PHONY: all build run test fuzz clean lib bench

all: build

# ONNX Runtime: the shared library of the npm package onnxruntime-node, whose
# C API (ORT_API_VERSION 24) matches the headers of onnxruntime_go v1.27.0.
ORT_VERSION ?= 1.24.3
ORT_LIB     := lib/libonnxruntime.so.1

lib: $(ORT_LIB)

$(ORT_LIB):
	@command -v npm >/dev/null || { echo "make lib: npm is needed to fetch onnxruntime-node (apt-get install npm)" >&2; exit 1; }
	rm -rf lib/.fetch && mkdir -p lib/.fetch
	cd lib/.fetch && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null
	tar -xzf lib/.fetch/onnxruntime-node-$(ORT_VERSION).tgz -C lib/.fetch package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	mv lib/.fetch/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@
	rm -rf lib/.fetch

build: $(ORT_LIB)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/abgate ./cmd/abgate

# The README's curl examples use the admin token dev-admin-token; it applies
# only when ABGATE_ADMIN_TOKEN is not set already.
run: export ABGATE_ADMIN_TOKEN ?= dev-admin-token
run: build
	./bin/abgate serve --demo $(ARGS)

# The PostgreSQL variants of the tests run when ABGATE_TEST_POSTGRES holds
# the DSN of a database (see DEVELOPERS.md); they are skipped otherwise,
# and fail when CI is set.
test: $(ORT_LIB)
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./migrations/... ./experiments/... ./router/...
ifeq ($(RACE),)
	@echo "make test: no cgo C compiler, running without -race"
endif
	$(GO) test $(RACE) -timeout 10m ./...

# Each Fuzz target for FUZZTIME (make fuzz FUZZTIME=2m for longer runs).
fuzz:
	@list=$$($(GO) test -list '^Fuzz' ./...) || { echo "make fuzz: go test -list failed" >&2; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { names[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2 "," names[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "make fuzz: no Fuzz targets"; exit 0; fi; \
	for t in $$targets; do \
		pkg=$${t%%,*}; name=$${t#*,}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# The benchmark harnesses: one line per comparison, "bench: <name>
# value=<v> <unit> baseline=<b> ratio=<v/b>". `bench inference`
# (cmd/abgate/bench.go) measures the inference server; `bench router`
# (cmd/abgate/bench_router.go) the bucketing core, the router against nginx
# (Debian's package, installed here when absent) and exposure logging on vs
# off, on a database it creates next to BENCH_POSTGRES and drops; `bench
# analytics` (cmd/abgate/bench_analytics.go) a results refresh over 10M
# exposures and 10M outcomes against a count over the exposures, likewise
# on a database of its own; `bench drift` (cmd/abgate/bench_drift.go) a
# drift report over 1M observations of 20 features x 3 variants.
BENCH_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

bench: $(ORT_LIB)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/abgate ./cmd/abgate
	./bin/abgate bench inference
	-command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || (apt-get update && apt-get install -y nginx-light || apt-get install -y nginx)
	./bin/abgate bench router --postgres '$(BENCH_POSTGRES)'
	./bin/abgate bench analytics --postgres '$(BENCH_POSTGRES)'
	./bin/abgate bench drift --postgres '$(BENCH_POSTGRES)'

clean:
	rm -rf bin
