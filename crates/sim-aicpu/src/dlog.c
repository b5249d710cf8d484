/* CANN's device log entry point, as the AICPU OS exports it to kernel SOs.
 * Variadic, so it lives in C; it formats the line and hands it to Rust. */
#include <stdarg.h>
#include <stdio.h>

void simpler_sim_dlog_line(int module, int level, const char *text);

void DlogRecord(int module, int level, const char *fmt, ...)
{
    char buf[2048];
    if (fmt == NULL) {
        simpler_sim_dlog_line(module, level, "(DlogRecord called with a NULL format)");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) {
        simpler_sim_dlog_line(module, level, "(DlogRecord: unformattable message)");
        return;
    }
    simpler_sim_dlog_line(module, level, buf);
}
