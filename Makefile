# ordo — the user's interface to the build. CMake does the work underneath.
#
#   make run     the main job on the embedded default
#   make test    install deps, ASan/UBSan debug build, run every test
#   make build   Release build into build/ (ordo, libordo.so, libordo.a)
#   make bench   every benchmark, printing tables
#   make install install library, header, ordo.pc and the CMake package
#   make install-check  build a consumer against a scratch install
#   make deps    install missing Debian packages (apt-get)
#   make tsan    ThreadSanitizer build of the concurrency tests (runtime,
#                storage, wallet, keys, queue, journal, submitter, rest,
#                server, node, postgres, cluster)
#   make memcheck  the runtime tests under valgrind
#   make fuzz    build the libFuzzer targets with clang and run each briefly

JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX      ?= /usr/local
FUZZ_SECONDS ?= 60
CMAKE       ?= cmake

# postgresql: the server the PostgreSQL backend's tests start, a private
# cluster per test (tests/support/support_pg.h); the default cluster Debian
# may create and start on install is not used.
DEBIAN_PACKAGES := build-essential cmake pkg-config libsodium-dev \
  libsecp256k1-dev libssl-dev libsqlite3-dev libpq-dev postgresql \
  libcurl4-openssl-dev \
  libmicrohttpd-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler \
  libcbor-dev libcmocka-dev python3 python3-pytest python3-pip python3-nacl \
  curl clang \
  libclang-rt-14-dev valgrind gnuplot-nox chromium chromium-driver

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test run bench install install-check release-check tsan memcheck fuzz clean

all: build

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

build: deps
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release -DORDO_BUILD_TESTS=OFF \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	$(CMAKE) --build build -j $(JOBS)

test: deps
	$(CMAKE) -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DORDO_WERROR=ON \
	  -DORDO_SANITIZE=address,undefined
	$(CMAKE) --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure -j $(JOBS)

run: build
	./build/ordo run

bench: build
	./build/ordo bench all

install: build
	$(CMAKE) --install build

# The build distributions make (Release, tests on), with warnings as
# errors: every build type stays warning-free.
release-check: deps
	$(CMAKE) -S . -B build-release-check -DCMAKE_BUILD_TYPE=Release \
	  -DORDO_WERROR=ON
	$(CMAKE) --build build-release-check -j $(JOBS)

# Install into a scratch prefix and build a consumer with pkg-config and with
# find_package(ordo).
install-check: build
	tests/install/check.sh

# TSan needs the heap below the 47-bit line; setarch -R turns off address
# randomisation so it works on kernels with high mmap entropy.
tsan: deps
	$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DORDO_WERROR=ON \
	  -DORDO_SANITIZE=thread
	$(CMAKE) --build build-tsan -j $(JOBS)
	cd build-tsan && setarch -R ctest --output-on-failure -L 'runtime|storage|wallet|keys|queue|journal|submitter|rest|server|node|postgres|cluster'

# The concurrency tests under valgrind, on a build without sanitizers.
MEMCHECK_TESTS ?= test_runtime test_storage test_wallet test_journal
memcheck: deps
	$(CMAKE) -S . -B build-memcheck -DCMAKE_BUILD_TYPE=Debug -DORDO_WERROR=ON
	$(CMAKE) --build build-memcheck -j $(JOBS)
	@for t in $(MEMCHECK_TESTS); do \
	  echo "== valgrind $$t"; \
	  ORDO_MEMCHECK=1 valgrind -q --error-exitcode=9 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect build-memcheck/tests/$$t \
	    > build-memcheck/$$t.memcheck.log 2>&1 \
	    || { cat build-memcheck/$$t.memcheck.log; exit 1; }; \
	  tail -n 1 build-memcheck/$$t.memcheck.log; \
	done

fuzz: deps
	CC=clang $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug \
	  -DORDO_WERROR=ON -DORDO_BUILD_TESTS=OFF -DORDO_BUILD_FUZZ=ON
	$(CMAKE) --build build-fuzz -j $(JOBS)
	@for f in build-fuzz/fuzz/fuzz_*; do \
	  name=$$(basename $$f); corpus=fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p build-fuzz/corpus/$$name; \
	  echo "== $$name ($(FUZZ_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build-fuzz/corpus/$$name $$corpus || exit 1; \
	done

clean:
	rm -rf build build-test build-tsan build-fuzz build-memcheck build-release-check
