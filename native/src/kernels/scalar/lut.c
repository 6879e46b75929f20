/* Scalar lookup-table kernels. (Not written yet.) */
#include "../kernels.h"

void bl_kernels_register_scalar_lut(bl_kernel_table *t) { (void)t; }
