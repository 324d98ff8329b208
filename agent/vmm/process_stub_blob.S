/* process_stub_blob.S -- the sandbox stub (process_stub.c, built as GW_STUB_ELF) embedded in
 * godwit-vmm as gw_stub_elf[gw_stub_elf_end - gw_stub_elf]: process_vm.c execs it from a memfd. */
	.section .rodata
	.balign 16
	.globl gw_stub_elf
	.globl gw_stub_elf_end
gw_stub_elf:
	.incbin GW_STUB_ELF
gw_stub_elf_end:
	.section .note.GNU-stack,"",@progbits
