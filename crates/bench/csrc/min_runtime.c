/*
 * The smallest runtime SO the host and the dispatcher accept: it exports
 * exactly the runtime contract (simpler_aicpu_init, simpler_aicpu_exec)
 * and nothing else. It stands in for the real runtime (which links Rust's
 * std and is over 300 KiB) where the cold-bootstrap curve needs a runtime
 * SO smaller than that: padded with a non-loaded section, it makes SOs of
 * 64 KiB and up that are installed, loaded and initialised like any other.
 *
 * Init checks the ABI version (the first field of InitArgs, see
 * crates/abi/src/launch.rs; SIMPLER_ABI_VERSION comes from simpler-abi
 * through build.rs). Exec runs no work: the curve builds runners and never
 * launches a batch on them, and a batch sent anyway fails, never passes.
 */
#include <stddef.h>
#include <stdint.h>

#ifndef SIMPLER_ABI_VERSION
#error "build.rs defines SIMPLER_ABI_VERSION from simpler_abi::ABI_VERSION"
#endif

#define EXPORT __attribute__((visibility("default")))

EXPORT int32_t simpler_aicpu_init(const void *args) {
    uint32_t version;
    if (args == NULL) {
        return -1;
    }
    /* Byte-wise: the payload need not be aligned. */
    __builtin_memcpy(&version, args, sizeof version);
    return version == SIMPLER_ABI_VERSION ? 0 : -1;
}

EXPORT int32_t simpler_aicpu_exec(const void *args) {
    (void)args;
    return -1;
}
