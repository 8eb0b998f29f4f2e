# fcn: the two commands for a fresh machine are `make demo` and `make test`.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build test demo table1 unet-demo bench sanitize standalone fuzz clean

deps:
	$(SUDO) bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

# The FCN paper's Table 1 on Fashion-MNIST scenes (AlexNet, VGG16, GoogLeNet, ResNet-50; at-once vs staged).
table1: build
	bash scripts/table1.sh $(BUILD)

# U-Net's paper training on touching objects: weight map and elastic deformation, mean IU / Dice / separation.
unet-demo: build
	bash scripts/unet-demo.sh $(BUILD)

# Speed: fcn bench against PyTorch-Python and OpenCV DNN in the same run, then the micro-benchmarks.
bench: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DFCN_BUILD_BENCH=ON
	cmake --build $(BUILD) -j$(JOBS)
	$(BUILD)/fcn bench --geometry reference --peers
	$(BUILD)/bench/fcn_micro --benchmark_min_time=0.5

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFCN_SANITIZE=ON
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

# Every source file compiled on its own (no unity batches): a file that compiles only through another's
# includes fails here, not in the default build (~16 min on 2 cores of an AVX-512 Zen 5, 2026-12-05).
standalone: deps
	cmake -S . -B build-standalone -DCMAKE_BUILD_TYPE=Release -DFCN_UNITY_BUILD=OFF -DFCN_BUILD_BENCH=ON
	cmake --build build-standalone -j$(JOBS)

# libFuzzer (clang, ASan + UBSan) on every parser of user files, FUZZ_SECONDS each (docs/reliability.md).
FUZZ_SECONDS ?= 60
fuzz: deps
	CXX=clang++ cmake -S fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j$(JOBS)
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(JOBS)

clean:
	rm -rf $(BUILD) build-asan build-standalone build-fuzz
