/* The simulator's C ABI exercised from C: a real bootstrap of the runtime SO
 * through the dispatcher, then init and exec launches whose results are
 * read back and checked. Layouts are restated here from docs/abi.md (with
 * static assertions), as any C host would.
 *
 * usage: c_api_test <dispatcher.so> <runtime.so>; prints "c_api_test: ok". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simpler_cann_sim.h"

#define CHECK(call)                                                                  \
    do {                                                                             \
        aclError rc_ = (call);                                                       \
        if (rc_ != ACL_SUCCESS) {                                                    \
            const char *m_ = aclGetRecentErrMsg();                                   \
            fprintf(stderr, "%s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #call, rc_, \
                    m_ ? m_ : "(no message)");                                       \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define EXPECT(cond)                                                       \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

typedef struct {
    uint64_t reserved0[5];
    uint64_t device_args;
    uint64_t reserved1[20];
    char kernel_name[64];
    char so_name[64];
    char op_name[64];
} BootstrapArgs;
_Static_assert(sizeof(BootstrapArgs) == 400, "BootstrapArgs");

typedef struct {
    uint64_t reserved0[12];
    uint64_t aicpu_so_bin, aicpu_so_len, device_id, inner_so_bin, inner_so_len, report;
    uint64_t reserved1[2];
} DeviceArgs;
_Static_assert(sizeof(DeviceArgs) == 160, "DeviceArgs");

typedef struct {
    uint32_t magic, abi_version, status, stage;
    int32_t err;
    uint32_t reserved;
    uint64_t fingerprint, bytes_written;
    char path[256];
} BootstrapReport;
_Static_assert(sizeof(BootstrapReport) == 296, "BootstrapReport");

typedef struct {
    uint32_t abi_version, device_id, log_level, thread_count;
    char kernel_name[64];
    char so_name[64];
} InitLaunchArgs;
_Static_assert(sizeof(InitLaunchArgs) == 144, "InitLaunchArgs");

typedef struct {
    uint64_t runtime_args, regs;
    char kernel_name[64];
    char so_name[64];
} ExecLaunchArgs;
_Static_assert(sizeof(ExecLaunchArgs) == 144, "ExecLaunchArgs");

typedef struct {
    uint32_t magic, abi_version, task_count, flags;
    uint64_t tasks, statuses, next_task;
    uint32_t done, failed;
} WorkHeader;
_Static_assert(sizeof(WorkHeader) == 48, "WorkHeader");

typedef struct {
    uint32_t op, flags;
    uint64_t dst, src0, src1, len, scalar;
    uint64_t reserved[2];
} Task;
_Static_assert(sizeof(Task) == 64, "Task");
_Static_assert(sizeof(rtAicpuArgsEx_t) == 48, "rtAicpuArgsEx_t");

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    EXPECT(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    EXPECT(buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void *upload(const void *src, size_t len)
{
    void *dev = NULL;
    CHECK(aclrtMalloc(&dev, len, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK(aclrtMemcpy(dev, len, src, len, ACL_MEMCPY_HOST_TO_DEVICE));
    return dev;
}

static void launch2(const char *kernel, uint32_t block_dim, void *block, uint32_t size,
                    aclrtStream stream)
{
    rtAicpuArgsEx_t info;
    memset(&info, 0, sizeof info);
    info.args = block;
    info.argsSize = size;
    info.kernelNameAddrOffset = 16;
    info.soNameAddrOffset = 80;
    CHECK(rtAicpuKernelLaunchExWithArgs(KERNEL_TYPE_AICPU, kernel, block_dim, &info, NULL,
                                        stream, 0));
    CHECK(aclrtSynchronizeStreamWithTimeout(stream, 60000));
}

int main(int argc, char **argv)
{
    EXPECT(argc == 3);
    size_t disp_len, rt_len;
    unsigned char *disp = read_file(argv[1], &disp_len);
    unsigned char *rt = read_file(argv[2], &rt_len);
    char so_name[64];
    snprintf(so_name, sizeof so_name, "simpler_inner_%016llx.so",
             (unsigned long long)fnv1a64(rt, rt_len));

    CHECK(aclInit(NULL));
    EXPECT(aclInit(NULL) == ACL_ERROR_REPEAT_INITIALIZE);
    uint32_t count = 0;
    CHECK(aclrtGetDeviceCount(&count));
    EXPECT(count >= 1);
    CHECK(aclrtSetDevice(0));
    aclrtStream stream = NULL;
    CHECK(aclrtCreateStream(&stream));

    /* Bootstrap: one KFC launch to libaicpu_extend_kernels.so. */
    BootstrapReport report;
    memset(&report, 0, sizeof report);
    DeviceArgs dargs;
    memset(&dargs, 0, sizeof dargs);
    void *d_disp = upload(disp, disp_len);
    void *d_rt = upload(rt, rt_len);
    void *d_report = upload(&report, sizeof report);
    dargs.aicpu_so_bin = (uint64_t)(uintptr_t)d_disp;
    dargs.aicpu_so_len = disp_len;
    dargs.inner_so_bin = (uint64_t)(uintptr_t)d_rt;
    dargs.inner_so_len = rt_len;
    dargs.report = (uint64_t)(uintptr_t)d_report;
    void *d_dargs = upload(&dargs, sizeof dargs);
    BootstrapArgs boot;
    memset(&boot, 0, sizeof boot);
    boot.device_args = (uint64_t)(uintptr_t)d_dargs;
    strcpy(boot.kernel_name, "DynTileFwkKernelServerInit");
    strcpy(boot.so_name, "libaicpu_extend_kernels.so");
    rtAicpuArgsEx_t info;
    memset(&info, 0, sizeof info);
    info.args = &boot;
    info.argsSize = sizeof boot;
    info.kernelNameAddrOffset = 208;
    info.soNameAddrOffset = 272;
    CHECK(rtAicpuKernelLaunchExWithArgs(KERNEL_TYPE_AICPU_KFC, "AST_DYN_AICPU", 1, &info, NULL,
                                        stream, 0));
    /* The argument block was copied: the host may scribble on it now. */
    memset(&boot, 0xff, sizeof boot);
    CHECK(aclrtSynchronizeStreamWithTimeout(stream, 60000));
    CHECK(aclrtMemcpy(&report, sizeof report, d_report, sizeof report,
                      ACL_MEMCPY_DEVICE_TO_HOST));
    EXPECT(report.magic == 0x50524253u); /* "SBRP" */
    EXPECT(report.status == 0);
    EXPECT(report.fingerprint == fnv1a64(rt, rt_len));
    EXPECT(strstr(report.path, so_name) != NULL);
    CHECK(aclrtFree(d_disp));
    CHECK(aclrtFree(d_rt));
    CHECK(aclrtFree(d_report));
    CHECK(aclrtFree(d_dargs));

    /* Init, then one exec filling a buffer and hashing it. */
    InitLaunchArgs init;
    memset(&init, 0, sizeof init);
    init.abi_version = 1;
    init.log_level = 2;
    init.thread_count = 2;
    strcpy(init.kernel_name, "simpler_aicpu_init");
    strcpy(init.so_name, so_name);
    launch2("simpler_aicpu_init", 1, &init, sizeof init, stream);

    enum { N = 4096 };
    void *d_buf = NULL, *d_hash = NULL, *d_work = NULL;
    CHECK(aclrtMalloc(&d_buf, N, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK(aclrtMalloc(&d_hash, 8, ACL_MEM_MALLOC_HUGE_FIRST));
    size_t work_len = sizeof(WorkHeader) + 2 * sizeof(Task) + 2 * sizeof(uint32_t);
    CHECK(aclrtMalloc(&d_work, work_len, ACL_MEM_MALLOC_HUGE_FIRST));
    unsigned char work[sizeof(WorkHeader) + 2 * sizeof(Task) + 2 * sizeof(uint32_t)];
    memset(work, 0, sizeof work);
    WorkHeader *h = (WorkHeader *)work;
    Task *t = (Task *)(work + sizeof(WorkHeader));
    uint64_t base = (uint64_t)(uintptr_t)d_work;
    h->magic = 0x4b525753u; /* "SWRK" */
    h->abi_version = 1;
    h->task_count = 2;
    h->tasks = base + sizeof(WorkHeader);
    h->statuses = base + sizeof(WorkHeader) + 2 * sizeof(Task);
    t[0].op = 2; /* Fill */
    t[0].dst = (uint64_t)(uintptr_t)d_buf;
    t[0].len = N;
    t[0].scalar = 0xc3;
    /* Independent of task 0: the two threads may run them in any order. */
    unsigned char pattern[N];
    for (int i = 0; i < N; i++)
        pattern[i] = (unsigned char)(i * 7);
    void *d_src = upload(pattern, N);
    t[1].op = 6; /* Fnv1a64 */
    t[1].dst = (uint64_t)(uintptr_t)d_hash;
    t[1].src0 = (uint64_t)(uintptr_t)d_src;
    t[1].len = N;
    CHECK(aclrtMemcpy(d_work, work_len, work, work_len, ACL_MEMCPY_HOST_TO_DEVICE));
    ExecLaunchArgs exec;
    memset(&exec, 0, sizeof exec);
    exec.runtime_args = base;
    strcpy(exec.kernel_name, "simpler_aicpu_exec");
    strcpy(exec.so_name, so_name);
    launch2("simpler_aicpu_exec", 2, &exec, sizeof exec, stream);

    unsigned char buf[N];
    uint64_t hash = 0;
    CHECK(aclrtMemcpy(buf, N, d_buf, N, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK(aclrtMemcpy(&hash, 8, d_hash, 8, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK(aclrtMemcpy(work, work_len, d_work, work_len, ACL_MEMCPY_DEVICE_TO_HOST));
    for (int i = 0; i < N; i++)
        EXPECT(buf[i] == 0xc3);
    EXPECT(hash == fnv1a64(pattern, N));
    EXPECT(h->done == 2 && h->failed == 0);

    /* An error path from C: unknown memcpy kind. */
    EXPECT(aclrtMemcpy(buf, N, d_buf, N, (aclrtMemcpyKind)7) == ACL_ERROR_RT_PARAM_INVALID);
    const char *msg = aclGetRecentErrMsg();
    EXPECT(msg != NULL && strstr(msg, "aclrtMemcpyKind 7") != NULL);
    /* The earlier aclInit failure was never fetched: it is still there,
     * below the newer message. */
    EXPECT(strstr(msg, "aclInit") > strstr(msg, "aclrtMemcpyKind 7"));
    EXPECT(aclGetRecentErrMsg() == NULL); /* fetched and cleared, as in CANN */

    CHECK(aclrtFree(d_buf));
    CHECK(aclrtFree(d_src));
    CHECK(aclrtFree(d_hash));
    CHECK(aclrtFree(d_work));
    SimStats stats;
    CHECK(simpler_sim_get_stats(0, &stats));
    EXPECT(stats.size == sizeof(SimStats));
    EXPECT(stats.live_bytes == 0 && stats.live_allocations == 0);
    EXPECT(stats.launches_kfc == 1 && stats.kfc_calls == 1 && stats.launches_aicpu == 2);
    EXPECT(stats.device_machine == simpler_sim_device_machine());
    CHECK(aclrtDestroyStream(stream));
    CHECK(aclrtResetDevice(0));
    CHECK(aclFinalize());
    free(disp);
    free(rt);
    printf("c_api_test: ok\n");
    return 0;
}
