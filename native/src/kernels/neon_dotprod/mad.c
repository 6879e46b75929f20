/* NEON multiply-add kernels with the ARMv8.2 dotprod extension: the kernel
 * bodies of neon/ built on sdot/udot (dot_sdot.h). */
#define BL_NEON_ISA neon_dotprod

#include "dot_sdot.h"

#include "../neon/bit_mad.h"
#include "../neon/float_mad.h"
#include "../neon/quant_mad.h"
#include "../neon/tq_mad.h"
