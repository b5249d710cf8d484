// Loads a C AICPU SO through libsimpler.so and launches its kernels on both
// launch paths: the C ABI from C++, with RAII owners and exceptions.
//
// `cargo xtask examples` (part of `cargo xtask test`) builds it with
//
//   c++ -std=c++17 -I include examples/cpp/main.cpp -L target/debug
//       -Wl,-rpath,target/debug -lsimpler -o cpp-example
//
// and runs it on the simulator as `cpp-example libc_kernels.so`, the SO
// built from examples/c-kernels/kernels.c, with SIMPLER_ARTIFACTS_DIR naming
// target/artifacts/<triple>.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "simpler.h"

namespace {

// The error of a failed call: the code, the message and the CANN code.
struct Error : std::runtime_error {
    int code;
    int32_t cann_code;
    Error(int code, const char *what)
        : std::runtime_error(what ? what : "unknown error"),
          code(code),
          cann_code(simpler_last_cann_code()) {}
};

void check(int rc) {
    if (rc != SIMPLER_OK) throw Error(rc, simpler_last_error());
}

struct CannDeleter { void operator()(simpler_cann *c) const { simpler_cann_close(c); } };
struct ModuleDeleter { void operator()(simpler_module *m) const { simpler_module_unload(m); } };
struct BufferDeleter { void operator()(simpler_buffer *b) const { simpler_buffer_free(b); } };
using Cann = std::unique_ptr<simpler_cann, CannDeleter>;
using Module = std::unique_ptr<simpler_module, ModuleDeleter>;
using Buffer = std::unique_ptr<simpler_buffer, BufferDeleter>;

Module load(simpler_cann *cann, const char *so, int launch_path) {
    const char *kernels[] = {"k_add", "k_fail"};
    simpler_module *m = nullptr;
    check(simpler_module_load(cann, 0, so, nullptr, kernels, 2, launch_path, &m));
    return Module(m);
}

Buffer upload(simpler_cann *cann, const std::vector<uint32_t> &data) {
    simpler_buffer *b = nullptr;
    check(simpler_buffer_alloc(cann, 0, data.size() * sizeof(uint32_t), &b));
    Buffer owned(b);
    check(simpler_buffer_write(b, 0, data.data(), data.size() * sizeof(uint32_t)));
    return owned;
}

// `k_add`'s payload: device addresses of u32 arrays and their length.
struct AddArgs {
    uint64_t dst, a, b, n;
};

void run(simpler_cann *cann, const char *so, int launch_path) {
    const char *name = launch_path == 0 ? "type2" : "binary";
    Module module = load(cann, so, launch_path);
    const size_t n = 1024;
    std::vector<uint32_t> a(n), b(n, 7), out(n, 0);
    for (size_t i = 0; i < n; i++) a[i] = static_cast<uint32_t>(i);
    Buffer da = upload(cann, a), db = upload(cann, b), dout = upload(cann, out);
    AddArgs args{simpler_buffer_device_addr(dout.get()), simpler_buffer_device_addr(da.get()),
                 simpler_buffer_device_addr(db.get()), n};
    check(simpler_launch(module.get(), "k_add", 4, &args, sizeof args, 10000));
    check(simpler_buffer_read(dout.get(), 0, out.data(), n * sizeof(uint32_t)));
    for (size_t i = 0; i < n; i++) {
        if (out[i] != a[i] + b[i]) {
            throw std::runtime_error("k_add wrote a wrong sum at " + std::to_string(i));
        }
    }
    std::printf("%s: k_add ok (%zu sums)\n", name, n);

    try {
        check(simpler_launch(module.get(), "k_fail", 1, nullptr, 0, 10000));
        throw std::runtime_error("k_fail succeeded");
    } catch (const Error &e) {
        if (e.code != SIMPLER_ERROR_KERNEL || e.cann_code != 507018) throw;
        std::printf("%s: k_fail failed as it should: CANN %d: %s\n", name, e.cann_code, e.what());
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s KERNELS_SO\n", argv[0]);
        return 2;
    }
    try {
        simpler_cann *raw = nullptr;
        check(simpler_cann_open_simulator(&raw));
        Cann cann(raw);
        for (int path : {0, 1}) run(cann.get(), argv[1], path);
        uint64_t live = 0;
        check(simpler_sim_live_bytes(cann.get(), 0, &live));
        if (live != 0) throw std::runtime_error(std::to_string(live) + " device bytes left");
        std::printf("no device memory left behind\n");
    } catch (const Error &e) {
        std::fprintf(stderr, "error %d (CANN %d): %s\n", e.code, e.cann_code, e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
