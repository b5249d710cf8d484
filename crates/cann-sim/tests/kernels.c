/* AICPU kernels for the simulator's tests, installed straight into a
 * device's preinstall directory (as the classic tar.gz would). Each takes
 * the device address of an argument block whose first 16 bytes are
 * { uint64_t a; uint64_t b; }. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct payload {
    uint64_t a;
    uint64_t b;
};

uint32_t sim_ok(void *args)
{
    (void)args;
    return 0;
}

/* Adds 1 to the uint64_t at device address a: counts the threads run. */
uint32_t sim_count(void *args)
{
    struct payload *p = args;
    __atomic_fetch_add((uint64_t *)(uintptr_t)p->a, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* Returns b. */
uint32_t sim_return(void *args)
{
    struct payload *p = args;
    return (uint32_t)p->b;
}

/* Sleeps a milliseconds. */
uint32_t sim_sleep_ms(void *args)
{
    struct payload *p = args;
    struct timespec ts = { (time_t)(p->a / 1000), (long)(p->a % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
    return 0;
}

/* Stores through the address a (pass an unmapped one to crash). */
uint32_t sim_store(void *args)
{
    struct payload *p = args;
    *(volatile uint64_t *)(uintptr_t)p->a = 1;
    return 0;
}

/* Logs through the device process's DlogRecord. */
uint32_t sim_log(void *args)
{
    (void)args;
    void (*dlog)(int, int, const char *, ...) =
        (void (*)(int, int, const char *, ...))dlsym(RTLD_DEFAULT, "DlogRecord");
    if (dlog == NULL)
        return 99;
    dlog(7, 1, "hello from %s: %d", "sim_log", 42);
    return 0;
}

/* Writes getpid() to the uint64_t at device address a. */
uint32_t sim_getpid(void *args)
{
    struct payload *p = args;
    *(uint64_t *)(uintptr_t)p->a = (uint64_t)getpid();
    return 0;
}

/* Copies SIMPLER_AICPU_PREINSTALL_DIR (NUL-terminated) to device address a,
 * at most b bytes; returns 1 when unset or too long. */
uint32_t sim_preinstall_env(void *args)
{
    struct payload *p = args;
    const char *dir = getenv("SIMPLER_AICPU_PREINSTALL_DIR");
    if (dir == NULL || strlen(dir) + 1 > p->b)
        return 1;
    memcpy((void *)(uintptr_t)p->a, dir, strlen(dir) + 1);
    return 0;
}

/* A barrier: adds 1 to the uint64_t at device address a, then waits (up
 * to 5 s) until it reaches b. Returns 1 when it never does, i.e. when the
 * threads meant to meet there did not run at the same time. */
uint32_t sim_barrier(void *args)
{
    struct payload *p = args;
    uint64_t *count = (uint64_t *)(uintptr_t)p->a;
    __atomic_fetch_add(count, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 5000; i++) {
        if (__atomic_load_n(count, __ATOMIC_SEQ_CST) >= p->b)
            return 0;
        usleep(1000);
    }
    return 1;
}

/* Moves the uint64_t at device address a from b to b + 1; returns 1 when
 * it was not b, i.e. when launches of a stream ran out of order. */
uint32_t sim_step(void *args)
{
    struct payload *p = args;
    uint64_t expected = p->b;
    return __atomic_compare_exchange_n((uint64_t *)(uintptr_t)p->a, &expected, p->b + 1, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
               ? 0
               : 1;
}
