/*
 * simpler_cann_sim.h — the C API of libsimpler_cann_sim.so.
 *
 * The first part is the subset of CANN's ACL/RT API that simpler uses, with
 * CANN 8.x/9.x signatures and layouts, so code written against it runs
 * unchanged on libascendcl.so + libruntime.so. The second part is
 * simulator-only (accounting and measurement); never call it on hardware.
 * See docs/simulator.md.
 */
#ifndef SIMPLER_CANN_SIM_H
#define SIMPLER_CANN_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int aclError;
typedef int32_t rtError_t;
typedef void *aclrtStream;
typedef void *rtStream_t;
typedef void rtSmDesc_t;

typedef enum aclrtMemMallocPolicy {
    ACL_MEM_MALLOC_HUGE_FIRST = 0,
    ACL_MEM_MALLOC_HUGE_ONLY = 1,
    ACL_MEM_MALLOC_NORMAL_ONLY = 2
} aclrtMemMallocPolicy;

typedef enum aclrtMemcpyKind {
    ACL_MEMCPY_HOST_TO_HOST = 0,
    ACL_MEMCPY_HOST_TO_DEVICE = 1,
    ACL_MEMCPY_DEVICE_TO_HOST = 2,
    ACL_MEMCPY_DEVICE_TO_DEVICE = 3
} aclrtMemcpyKind;

#define KERNEL_TYPE_AICPU 2
#define KERNEL_TYPE_AICPU_KFC 5

#define ACL_SUCCESS 0
#define ACL_ERROR_REPEAT_INITIALIZE 100002
#define ACL_ERROR_RT_PARAM_INVALID 107000
#define ACL_ERROR_RT_INVALID_DEVICEID 107001
#define ACL_ERROR_RT_CONTEXT_NULL 107002
#define ACL_ERROR_RT_DEVICE_TASK_ABORT 107022
#define ACL_ERROR_RT_FEATURE_NOT_SUPPORT 207000
#define ACL_ERROR_RT_MEMORY_ALLOCATION 207001
#define ACL_ERROR_RT_INTERNAL_ERROR 507000
#define ACL_ERROR_RT_AICPU_TIMEOUT 507017
#define ACL_ERROR_RT_AICPU_EXCEPTION 507018
#define ACL_ERROR_RT_STREAM_SYNC_TIMEOUT 507046
#define ACL_ERROR_RT_DRV_INTERNAL_ERROR 507899

/* CANN 8.x/9.x layout: 48 bytes. */
typedef struct {
    void *args;                    /*  0 host address of the argument block */
    void *hostInputInfoPtr;        /*  8 NULL */
    void *kernelOffsetInfoPtr;     /* 16 NULL */
    uint32_t argsSize;             /* 24 */
    uint16_t hostInputInfoNum;     /* 28 */
    uint16_t kernelOffsetInfoNum;  /* 30 */
    uint32_t soNameAddrOffset;     /* 32 offset of the so name inside args */
    uint32_t kernelNameAddrOffset; /* 36 offset of the kernel name inside args */
    bool isNoNeedH2DCopy;          /* 40 false: the runtime copies args */
    uint16_t timeout;              /* 42 op timeout in seconds, 0 = default */
    uint8_t reserved;              /* 44 */
} rtAicpuArgsEx_t;

aclError aclInit(const char *configPath);
aclError aclFinalize(void);
aclError aclrtGetDeviceCount(uint32_t *count);
aclError aclrtSetDevice(int32_t deviceId);
aclError aclrtResetDevice(int32_t deviceId);
aclError aclrtCreateStream(aclrtStream *stream);
aclError aclrtDestroyStream(aclrtStream stream);
aclError aclrtSynchronizeStream(aclrtStream stream);
aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout);
aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy);
aclError aclrtFree(void *devPtr);
aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count,
                     aclrtMemcpyKind kind);
const char *aclGetRecentErrMsg(void);
rtError_t rtAicpuKernelLaunchExWithArgs(uint32_t kernelType, const char *opName,
                                        uint32_t blockDim,
                                        const rtAicpuArgsEx_t *argsInfo,
                                        rtSmDesc_t *smDesc, rtStream_t stream,
                                        uint32_t flags);

/* The binary-handle path (rts_kernel.h, rt_external_kernel.h): CPU kernels
 * registered from a JSON op descriptor and launched by handle. */
typedef void *rtBinHandle;
typedef void *rtFuncHandle;

#define RT_LOAD_BINARY_OPT_LAZY_LOAD 1
#define RT_LOAD_BINARY_OPT_MAGIC 2
#define RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE 3

/* 20 bytes. */
typedef struct {
    uint32_t optionId;             /*  0 an RT_LOAD_BINARY_OPT_* */
    union {
        uint32_t isLazyLoad;
        uint32_t magic;
        int32_t cpuKernelMode;     /* 0: JSON only (the simulator's one) */
        uint32_t rsv[4];
    } value;                       /*  4 */
} rtLoadBinaryOption_t;

/* 16 bytes. */
typedef struct {
    rtLoadBinaryOption_t *options; /*  0 */
    size_t numOpt;                 /*  8 */
} rtLoadBinaryConfig_t;

/* 20 bytes. */
typedef struct {
    uint32_t id;                   /*  0 an rtLaunchKernelAttrId, 0 none */
    union {
        uint32_t rsv[4];
    } value;                       /*  4 */
} rtLaunchKernelAttr_t;

/* 16 bytes; attrs must not be NULL even with numAttrs 0. */
typedef struct {
    rtLaunchKernelAttr_t *attrs;   /*  0 */
    size_t numAttrs;               /*  8 */
} rtKernelLaunchCfg_t;

/* 72 bytes. */
typedef struct {
    rtAicpuArgsEx_t baseArgs;      /*  0 copied to the device */
    size_t cpuParamHeadOffset;     /* 48 the kernel gets the copy + this */
    uint32_t rsv[4];               /* 56 */
} rtCpuKernelArgs_t;

rtError_t rtsBinaryLoadFromFile(const char *binPath,
                                const rtLoadBinaryConfig_t *optionalCfg,
                                rtBinHandle *handle);
rtError_t rtsBinaryUnload(const rtBinHandle binHandle);
rtError_t rtsFuncGetByName(const rtBinHandle binHandle, const char *kernelName,
                           rtFuncHandle *funcHandle);
rtError_t rtsLaunchCpuKernel(const rtFuncHandle funcHandle, uint32_t numBlocks,
                             rtStream_t stm, const rtKernelLaunchCfg_t *cfg,
                             rtCpuKernelArgs_t *argsInfo);

/* ---- simulator only ---------------------------------------------------- */

/* Per-device counters of this host process (crates/abi/src/sim.rs). */
typedef struct {
    uint32_t size;             /*  0 sizeof(SimStats) as the library knows it */
    uint32_t device_machine;   /*  4 ELF e_machine of the device process */
    uint64_t live_bytes;       /*  8 bytes allocated by aclrtMalloc, live */
    uint64_t peak_bytes;       /* 16 highest live_bytes */
    uint64_t live_allocations; /* 24 */
    uint64_t launches_aicpu;   /* 32 kernel type 2 */
    uint64_t launches_kfc;     /* 40 kernel type 5 */
    uint64_t launches_other;   /* 48 any other type (rejected) */
    uint64_t kfc_calls;        /* 56 DynTileFwkBackendKernelServerInit calls */
    uint64_t dispatcher_saves; /* 64 dispatcher SOs saved (latch: <= 1 per process) */
    uint64_t dlopens;          /* 72 dlopen calls in device processes */
    uint64_t device_restarts;  /* 80 device processes started after the first */
    uint64_t binaries_live;    /* 88 rtsBinaryLoadFromFile handles live */
    uint64_t functions_live;   /* 96 rtsFuncGetByName handles live */
    uint64_t binary_loads;     /* 104 successful rtsBinaryLoadFromFile calls */
    uint64_t launches_cpu_kernel; /* 112 rtsLaunchCpuKernel calls */
} SimStats;

/* 0, or 107000 for a NULL out or a device id out of range. */
int32_t simpler_sim_get_stats(int32_t device, SimStats *out);
/* ELF e_machine of the device binary (62 x86-64, 183 AArch64), 0 if unknown. */
uint32_t simpler_sim_device_machine(void);
/* count round trips over the current device's control channel (the floor
 * under a launch->sync round trip); 0 or an aclError. */
int32_t simpler_sim_ping(uint32_t count);

#ifdef __cplusplus
}
#endif

#endif /* SIMPLER_CANN_SIM_H */
