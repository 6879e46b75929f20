/* Which ISAs this CPU runs (CPUID / hwcaps), whatever this build compiled in. */
#include "cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* AMX tiles hold 8 KiB of state that Linux (5.16 on) gives a process only
 * when it asks: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA). */
static int amx_permitted(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static int cpu_has(bl_isa isa) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    unsigned long long xcr0 = xgetbv0();
    int ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int vbmi = (c >> 1) & 1, vnni = (c >> 11) & 1;
    if (isa == BL_ISA_AVX2) return ymm_state && avx2 && fma && f16c && bmi2;
    if (isa == BL_ISA_AVX_VNNI) {
        int avx2_set = ymm_state && avx2 && fma && f16c && bmi2;
        return avx2_set && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1);
    }
    int avx512_set = ymm_state && zmm_state && avx2 && fma && f16c && avx512f && avx512bw &&
                     avx512vl && vbmi && vnni;
    if (isa == BL_ISA_AVX512) return avx512_set;
    if (isa == BL_ISA_AMX) { /* AMX-TILE and AMX-INT8 (EDX 24, 25), tile state in XCR0 (17, 18) */
        int amx = ((d >> 24) & 1) && ((d >> 25) & 1) && (xcr0 & 0x60000) == 0x60000;
        return avx512_set && amx && amx_permitted();
    }
    return 0;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

static int cpu_has(bl_isa isa) {
    unsigned long caps = getauxval(AT_HWCAP);
    if (isa == BL_ISA_NEON) return 1; /* Advanced SIMD is mandatory on aarch64 */
    if (isa == BL_ISA_NEON_DOTPROD) return (caps & HWCAP_ASIMDDP) != 0;
    return 0;
}
#else
static int cpu_has(bl_isa isa) { (void)isa; return 0; }
#endif

/* CPUID is slow under some hypervisors (about 15 us here), so the answers are
 * read once per process. */
static int runs[BL_ISA_COUNT];
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void) {
    runs[BL_ISA_SCALAR] = 1;
    for (int isa = BL_ISA_SCALAR + 1; isa < BL_ISA_COUNT; isa++) runs[isa] = cpu_has((bl_isa)isa);
}

int bl_cpu_runs(int isa) {
    if (isa < 0 || isa >= BL_ISA_COUNT) return 0;
    pthread_once(&probe_once, probe);
    return runs[isa];
}

static const char *const isa_names[BL_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon",
                                                    "neon_dotprod", "avx_vnni", "amx"};

const char *bl_isa_name(int isa) {
    return isa >= 0 && isa < BL_ISA_COUNT ? isa_names[isa] : "unknown";
}

int bl_isa_by_name(const char *name) {
    for (int isa = 0; isa < BL_ISA_COUNT; isa++)
        if (strcmp(name, isa_names[isa]) == 0) return isa;
    return -1;
}

/* The x86 vector width each ISA's kernels run at, as the ISA of the plain
 * loops' copy that matches it (vec.h): a forced ISA caps the loops too, so
 * that BITLLM_ISA=avx2 measures what an AVX2-only CPU would run. */
static const int loops_isa_of[BL_ISA_COUNT] = {
    [BL_ISA_SCALAR] = BL_ISA_SCALAR,   [BL_ISA_AVX2] = BL_ISA_AVX2,
    [BL_ISA_AVX512] = BL_ISA_AVX512,   [BL_ISA_NEON] = BL_ISA_SCALAR,
    [BL_ISA_NEON_DOTPROD] = BL_ISA_SCALAR, [BL_ISA_AVX_VNNI] = BL_ISA_AVX2,
    [BL_ISA_AMX] = BL_ISA_AVX512,
};
static int loops_isa;
static pthread_once_t loops_once = PTHREAD_ONCE_INIT;

static void pick_loops_isa(void) {
    int widest = bl_cpu_runs(BL_ISA_AVX512) ? BL_ISA_AVX512
                 : bl_cpu_runs(BL_ISA_AVX2) ? BL_ISA_AVX2
                                            : BL_ISA_SCALAR;
    const char *forced = getenv("BITLLM_ISA");
    int isa = forced ? bl_isa_by_name(forced) : -1;
    /* SCALAR < AVX2 < AVX512 in width as in number */
    loops_isa = isa >= 0 && loops_isa_of[isa] < widest ? loops_isa_of[isa] : widest;
}

int bl_loops_isa(void) {
    pthread_once(&loops_once, pick_loops_isa);
    return loops_isa;
}
