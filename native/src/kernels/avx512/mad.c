/* avx512 multiply-add kernels. (Not written yet: the scalar rows stand in.) */
#include "../kernels.h"

void bl_kernels_register_avx512_mad(bl_kernel_table *t) { (void)t; }
