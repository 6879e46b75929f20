/* What the CPU can run, asked of the CPU itself (CPUID / hwcaps): nothing
 * here knows which kernels this build compiled in (kernels/isa.c combines both). */
#ifndef BL_CPU_H
#define BL_CPU_H

#include "bitllm.h"

/* Whether this CPU runs an ISA's instructions (and the OS saves its registers). */
int bl_cpu_runs(int isa);

/* The ISA a name (bl_isa_name's, as $BITLLM_ISA spells them) means, or -1. */
int bl_isa_by_name(const char *name);

#endif
