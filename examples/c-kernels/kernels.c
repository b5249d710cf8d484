/*
 * An AICPU SO in plain C for `simpler launch`: no simpler header, only libc.
 *
 * Each kernel is `uint32_t name(void *param)`. CANN's AICPU scheduler calls
 * it with `param` pointing at the device copy of the launch's argument
 * block, whose first bytes are the payload the host gave (offset 0). A
 * kernel returns 0 for success; any other value fails the launch. It must
 * not return 101, 201 or 501..505, which CANN's scheduler gives meanings
 * of its own (see README.md).
 *
 * Build for the simulator on this machine:
 *     cc -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -o libc_kernels.so kernels.c
 * and for an Ascend AICPU (aarch64, glibc 2.17):
 *     python3 -m ziglang cc -target aarch64-linux-gnu.2.17 -std=c11 -O2 \
 *         -Wall -Wextra -Werror -shared -fPIC -o libc_kernels.so kernels.c
 */

#include <stdint.h>
#include <stdio.h>

/* Returned when a kernel cannot do its job; any value outside CANN's own
 * codes would do. */
#define K_ERROR 1u

/*
 * param: a NUL-terminated path. Writes "ok" to that file, which proves the
 * kernel ran in the device's process (the AICPU OS, or the simulator's
 * device process) with this payload.
 */
uint32_t k_touch(void *param)
{
    const char *path = param;
    FILE *f;
    if (path == NULL || path[0] == '\0')
        return K_ERROR;
    f = fopen(path, "w");
    if (f == NULL)
        return K_ERROR;
    if (fputs("ok", f) == EOF) {
        fclose(f);
        return K_ERROR;
    }
    return fclose(f) == 0 ? 0 : K_ERROR;
}

/* The payload of k_add: device addresses of three u32 arrays, and their
 * length in elements. */
struct add_args {
    uint64_t dst;
    uint64_t a;
    uint64_t b;
    uint64_t n;
};

/* dst[i] = a[i] + b[i] (wrapping) for i < n. */
uint32_t k_add(void *param)
{
    const struct add_args *args = param;
    uint32_t *dst;
    const uint32_t *a, *b;
    uint64_t i;
    if (args == NULL)
        return K_ERROR;
    if (args->n == 0)
        return 0;
    if (args->dst == 0 || args->a == 0 || args->b == 0)
        return K_ERROR;
    dst = (uint32_t *)(uintptr_t)args->dst;
    a = (const uint32_t *)(uintptr_t)args->a;
    b = (const uint32_t *)(uintptr_t)args->b;
    for (i = 0; i < args->n; i++)
        dst[i] = a[i] + b[i];
    return 0;
}

/* Always fails, with a code of its own: the host sees the launch fail. */
uint32_t k_fail(void *param)
{
    (void)param;
    return 7;
}

/* Exported, but data: `simpler launch` refuses to launch it, before
 * anything is uploaded. */
int not_a_kernel = 42;

/* A function, but not in the dynamic symbol table: the scheduler could not
 * find it, so `simpler launch` refuses it too. */
__attribute__((visibility("hidden"))) uint32_t k_hidden(void *param)
{
    (void)param;
    return 0;
}
