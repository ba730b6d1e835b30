# Coolpy7 build and test entry points. CI runs `make test` (see .ci/run).

GO      ?= go
TIMEOUT ?= 10m

.PHONY: test fmt-check vet build bench

# Everything CI checks. The race detector runs over every package in one
# pass: the whole tree under -race fits comfortably in CI's budget (the
# e2e suite is I/O-bound and takes about 15 s either way), so there is no
# separate non-race run to duplicate it.
test: fmt-check vet
	$(GO) test -race -timeout $(TIMEOUT) ./...

# Fails, listing them, if any Go file is not gofmt-clean.
fmt-check:
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './bin/*'); \
	bad=$$(gofmt -l $$files); \
	if [ -n "$$bad" ]; then echo "gofmt needed on:"; echo "$$bad"; exit 1; fi

vet:
	$(GO) vet ./...

build:
	$(GO) build -o bin/ ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./packets ./topics ./broker
