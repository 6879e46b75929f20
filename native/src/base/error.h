/* Per-thread error messages behind bl_last_error(). */
#ifndef BL_ERROR_H
#define BL_ERROR_H

#include "bitllm.h"

/* Records a printf-style message for bl_last_error() and returns status. */
int bl_fail(bl_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
