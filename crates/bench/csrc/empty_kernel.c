/*
 * The empty AICPU kernel of the simulator's launch latency benchmark
 * (benches/sim_latency.rs). Launched as a type-2 kernel by SO and kernel
 * name, it returns at once, so a launch→sync round trip costs what the
 * simulator adds and nothing else.
 */
#include <stdint.h>

uint32_t simpler_bench_empty(void *args) {
    (void)args;
    return 0;
}
