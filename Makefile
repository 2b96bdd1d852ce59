# Two entry points: `make run` and `make test`. Both install what is missing first.
BUILD ?= build
BUILD_SAN ?= build-sanitize
SAMPLE ?= samples/mixed-resets.pcap
JOBS ?= $(shell nproc)

.PHONY: all deps build run test test-sanitize bench bench-live clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/rstscope analyze $(SAMPLE)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

$(BUILD_SAN)/build.ninja: | deps
	cmake -S . -B $(BUILD_SAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRSTSCOPE_SANITIZE=ON -DRSTSCOPE_BENCH=OFF

test-sanitize: deps $(BUILD_SAN)/build.ninja
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

bench: build
	bash bench/compare.sh

# Needs root: replays a generated capture into a veth between two namespaces it creates.
bench-live: build
	bash bench/live.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
