/*
 * The launch shim of the host-side launch cost benchmark (src/launch.rs).
 *
 * It exports the two calls of a launch, rtAicpuKernelLaunchExWithArgs and
 * aclrtSynchronizeStreamWithTimeout. A CANN API loaded from the library list
 * [this shim, the simulator] resolves those two here and every other call in
 * the simulator, so a runner is built (bootstrap, init) exactly as usual.
 *
 * Modes (simpler_bench_shim_mode):
 * - FORWARD (the default): both calls go to the simulator's functions
 *   registered with simpler_bench_shim_forward.
 * - IMMEDIATE: a launch only copies its argument block, which any runtime
 *   must do before it returns (its caller may reuse the block at once), and
 *   a sync returns at once.
 *   The time a caller spends in a launch is then the caller's own cost plus
 *   this fixed minimum, whichever way the call is made.
 * - SYNC_DEFERRED: launches go to the simulator, syncs return at once; the
 *   benchmark then waits for the launch, untimed, with
 *   simpler_bench_shim_sync_deferred. The time a caller spends is then its
 *   own cost plus the simulator's launch call, without the device's work.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* rtAicpuArgsEx_t up to the fields read here (crates/abi: AicpuArgsEx). */
typedef struct {
    const void *args;
    const void *host_input_info;
    const void *kernel_offset_info;
    uint32_t args_size;
} args_ex_head;

typedef int32_t (*launch_fn)(uint32_t, const char *, uint32_t, const void *, void *, void *,
                             uint32_t);
typedef int32_t (*sync_fn)(void *, int32_t);

/* ACL_ERROR_RT_PARAM_INVALID */
#define PARAM_INVALID 107000

enum { FORWARD = 0, IMMEDIATE = 1, SYNC_DEFERRED = 2 };

static launch_fn forward_launch;
static sync_fn forward_sync;
static int mode;
/* The stream of the last launch made in SYNC_DEFERRED mode. */
static void *deferred_stream;
/* The simulator's limit on argsSize. */
static unsigned char copied_args[1 << 20];

void simpler_bench_shim_forward(launch_fn launch, sync_fn sync) {
    __atomic_store_n(&forward_launch, launch, __ATOMIC_RELEASE);
    __atomic_store_n(&forward_sync, sync, __ATOMIC_RELEASE);
}

/* 0 on success, PARAM_INVALID for an unknown mode. */
int32_t simpler_bench_shim_mode(int32_t new_mode) {
    if (new_mode != FORWARD && new_mode != IMMEDIATE && new_mode != SYNC_DEFERRED) {
        return PARAM_INVALID;
    }
    __atomic_store_n(&mode, new_mode, __ATOMIC_RELEASE);
    return 0;
}

/* The real sync of the stream of the last SYNC_DEFERRED launch. */
int32_t simpler_bench_shim_sync_deferred(int32_t timeout_ms) {
    sync_fn sync = __atomic_load_n(&forward_sync, __ATOMIC_ACQUIRE);
    void *stream = __atomic_load_n(&deferred_stream, __ATOMIC_ACQUIRE);
    if (sync == NULL || stream == NULL) {
        return PARAM_INVALID;
    }
    return sync(stream, timeout_ms);
}

int32_t rtAicpuKernelLaunchExWithArgs(uint32_t kernel_type, const char *op_name,
                                      uint32_t block_dim, const void *args_info, void *sm_desc,
                                      void *stream, uint32_t flags) {
    int current = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    if (current == IMMEDIATE) {
        const args_ex_head *info = args_info;
        if (info == NULL || info->args == NULL || info->args_size == 0 ||
            info->args_size > sizeof copied_args) {
            return PARAM_INVALID;
        }
        memcpy(copied_args, info->args, info->args_size);
        return 0;
    }
    launch_fn launch = __atomic_load_n(&forward_launch, __ATOMIC_ACQUIRE);
    if (launch == NULL) {
        return PARAM_INVALID;
    }
    if (current == SYNC_DEFERRED) {
        __atomic_store_n(&deferred_stream, stream, __ATOMIC_RELEASE);
    }
    return launch(kernel_type, op_name, block_dim, args_info, sm_desc, stream, flags);
}

int32_t aclrtSynchronizeStreamWithTimeout(void *stream, int32_t timeout_ms) {
    if (__atomic_load_n(&mode, __ATOMIC_ACQUIRE) != FORWARD) {
        return 0;
    }
    sync_fn sync = __atomic_load_n(&forward_sync, __ATOMIC_ACQUIRE);
    if (sync == NULL) {
        return PARAM_INVALID;
    }
    return sync(stream, timeout_ms);
}
