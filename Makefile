# Wraps scripts/setup.sh, cmake and ctest. `make run` and `make test` are all a new user needs.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ARGS ?=

.PHONY: all setup build run test unit asan fuzz bench format clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@exec $(BUILD)/mcp-executor serve $(ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

asan: setup
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
	  -DSANITIZE=address,undefined -DMCPX_FUZZ=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) --timeout 900

# New inputs go into the first corpus folder: a scratch one in the build, not the checked-in seeds.
fuzz: asan
	mkdir -p $(ASAN_BUILD)/fuzz/jsonrpc $(ASAN_BUILD)/fuzz/kernel_frame
	$(ASAN_BUILD)/tests/fuzz/jsonrpc_fuzzer -max_total_time=60 $(ASAN_BUILD)/fuzz/jsonrpc \
	  tests/fuzz/corpus
	$(ASAN_BUILD)/tests/fuzz/kernel_frame_fuzzer -max_total_time=60 \
	  $(ASAN_BUILD)/fuzz/kernel_frame tests/fuzz/kernel_frame_corpus

# The benchmarks also compare against a Jupyter kernel, which only they install.
bench: build
	@bash scripts/setup.sh --bench
	bash bench/run.sh $(BUILD)

format:
	find src sandbox tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
