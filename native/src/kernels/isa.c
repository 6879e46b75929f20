/* Which ISA the kernels run on: supported means compiled into this library
 * and run by this CPU; AUTO means the best supported one, or $BITLLM_ISA.
 * Naming an ISA this CPU or build lacks is an error, not a crash. */
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/error.h"
#include "kernels.h"

/* bl_kernels_compiled runs no ISA code, so asking it first is safe either way. */
int bl_isa_supported(int isa) {
    if (isa < 0 || isa >= BL_ISA_COUNT) return 0;
    return bl_kernels_compiled((bl_isa)isa) && bl_cpu_runs(isa);
}

static int best_isa(void) {
    static const bl_isa preference[] = {BL_ISA_AMX, BL_ISA_AVX512, BL_ISA_AVX_VNNI, BL_ISA_AVX2,
                                        BL_ISA_NEON_DOTPROD, BL_ISA_NEON};
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (bl_isa_supported(preference[i])) return preference[i];
    return BL_ISA_SCALAR;
}

int bl_isa_default(void) {
    const char *forced = getenv("BITLLM_ISA");
    if (!forced || !*forced) return best_isa();
    int isa = bl_isa_by_name(forced);
    if (isa >= 0) {
        if (!bl_isa_supported(isa))
            return bl_fail(BL_ERR_UNSUPPORTED,
                           "BITLLM_ISA=%s: this CPU or this build cannot run %s kernels", forced,
                           forced);
        return isa;
    }
    char names[128] = "";
    for (isa = 0; isa < BL_ISA_COUNT; isa++) {
        if (isa) strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, bl_isa_name(isa), sizeof names - strlen(names) - 1);
    }
    return bl_fail(BL_ERR_INVALID_ARGUMENT, "BITLLM_ISA=%s is not an ISA (%s)", forced, names);
}
