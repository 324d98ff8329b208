# process_backend.cmake -- sources of the process backend (agent/vmm/process_*.c) and its
# sandbox stub: a static, freestanding program built without the project's flags (like the
# test guests), linked high in the address space so that guest RAM can start at 0, and
# embedded in godwit-vmm (process_stub_blob.S) so that no path has to be found at run time.
set(GW_STUB_SRC ${CMAKE_SOURCE_DIR}/agent/vmm/process_stub.c)
set(GW_STUB_ELF ${CMAKE_BINARY_DIR}/godwit-vmm-stub)
# -fpie: RIP-relative code, so that it links at a fixed address above 2 GiB (-no-pie)
set(GW_STUB_CFLAGS -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -ffreestanding -fno-builtin
  -nostdlib -static -fpie -fno-stack-protector -fcf-protection=none
  -fno-asynchronous-unwind-tables -fno-unwind-tables -I${CMAKE_SOURCE_DIR}/agent/vmm)
if(GW_WERROR)
  list(APPEND GW_STUB_CFLAGS -Werror)
endif()
add_custom_command(
  OUTPUT ${GW_STUB_ELF}
  COMMAND ${CMAKE_C_COMPILER} ${GW_STUB_CFLAGS} -no-pie -Wl,-Ttext-segment=0x6f0000000000
          -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,max-page-size=4096
          -o ${GW_STUB_ELF} ${GW_STUB_SRC}
  DEPENDS ${GW_STUB_SRC} ${CMAKE_SOURCE_DIR}/agent/vmm/process_stub.h
  COMMENT "process backend stub"
  VERBATIM)
add_custom_target(godwit_vmm_stub DEPENDS ${GW_STUB_ELF})
enable_language(ASM)
set_source_files_properties(${CMAKE_SOURCE_DIR}/agent/vmm/process_stub_blob.S PROPERTIES
  OBJECT_DEPENDS ${GW_STUB_ELF} COMPILE_DEFINITIONS "GW_STUB_ELF=\"${GW_STUB_ELF}\"")
set(GW_PROCESS_BACKEND_SRCS
  agent/vmm/process_vm.c agent/vmm/process_run.c agent/vmm/process_dirty.c
  agent/vmm/process_state.c agent/vmm/process_decode.c agent/vmm/process_stub_blob.S)
