/* The shapes of the AMX tile registers (palette 1), which each kernel sets
 * before it multiplies: one {rows, bytes per row} per register, 0 x 0 for the
 * registers it leaves unused. */
#ifndef BL_AMX_TILES_H
#define BL_AMX_TILES_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define BL_AMX_TILES 8

typedef struct bl_amx_shape {
    uint8_t rows;
    uint16_t row_bytes;
} bl_amx_shape;

static inline void bl_amx_configure(const bl_amx_shape shapes[BL_AMX_TILES]) {
    struct { /* LDTILECFG's 64-byte operand */
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < BL_AMX_TILES; t++) {
        cfg.rows[t] = shapes[t].rows;
        cfg.colsb[t] = shapes[t].row_bytes;
    }
    _tile_loadconfig(&cfg);
}

#endif
