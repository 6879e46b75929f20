/* Baseline ARMv8 NEON multiply-add kernels: the shared kernel bodies built on
 * widening multiplies (dot_widening.h). */
#define BL_NEON_ISA neon

#include "dot_widening.h"

#include "bit_mad.h"
#include "float_mad.h"
#include "quant_mad.h"
#include "tq_mad.h"
