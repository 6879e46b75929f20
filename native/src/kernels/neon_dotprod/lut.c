/* neon_dotprod lookup-table kernels: the plain NEON ones, which run on every
 * ARMv8 core (sdot would only replace adds the tables already do). */
#include "../kernels.h"

void bl_kernels_register_neon_lut(bl_kernel_table *t);

void bl_kernels_register_neon_dotprod_lut(bl_kernel_table *t) { bl_kernels_register_neon_lut(t); }
