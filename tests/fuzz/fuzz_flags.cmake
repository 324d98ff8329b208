# fuzz_flags.cmake -- compiler flags of a GW_FUZZ build (included from the top-level
# CMakeLists.txt before any target): every library is instrumented for libFuzzer's coverage
# and built with ASan + UBSan, so that a harness finds bugs in the code it links, not only in
# its own file. The harnesses themselves (tests/fuzz/CMakeLists.txt) link -fsanitize=fuzzer.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "GW_FUZZ needs clang (libFuzzer): configure with CC=clang "
    "(deploy/fuzz.sh does; Debian 12: apt-get install clang-14 libclang-rt-14-dev)")
endif()
set(GW_FUZZ_SANITIZERS address,undefined)
add_compile_options(-fsanitize=fuzzer-no-link,${GW_FUZZ_SANITIZERS}
  -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g
  # clang warns about things gcc does not; the gcc build is the one that keeps -Werror
  -Wno-error -Wno-unknown-warning-option)
add_link_options(-fsanitize=${GW_FUZZ_SANITIZERS})
