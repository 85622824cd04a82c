/* Long work shows where it is: one live line on a terminal, plain lines
 * at a steady pace in a log. */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_begin(cli_progress *p, FILE *f, int64_t first, int64_t total) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->first = first;
    p->total = total;
    p->start = p->last_print = cli_now();
    p->period = p->tty ? 0.125 : 30.0;
}

static void duration(char *buf, size_t size, double s) {
    if (!isfinite(s) || s < 0)
        snprintf(buf, size, "?");
    else if (s < 60)
        snprintf(buf, size, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void print_line(cli_progress *p, int64_t step, double loss) {
    double el = cli_now() - p->start, rate = (double)(step - p->first) / el;
    char eta[32], spent[32], line[160];
    duration(eta, sizeof eta, (double)(p->total - step) / rate);
    duration(spent, sizeof spent, el);
    int n = isnan(loss) /* steps without a loss: sampling */
                ? snprintf(line, sizeof line, "step %lld/%lld  %.2f steps/s  %s spent, %s left",
                           (long long)step, (long long)p->total, rate, spent, eta)
                : snprintf(line, sizeof line,
                           "step %lld/%lld  loss %.4f  avg %.4f  %.2f steps/s  %s spent, %s left",
                           (long long)step, (long long)p->total, loss, p->smooth, rate, spent, eta);
    if (p->tty) {
        fprintf(p->f, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
        p->width = n;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
}

void cli_progress_step(cli_progress *p, int64_t step, double loss) {
    /* The moving average of the loss over about the last 100 steps,
     * unbiased at the start as Adam's moments are. */
    p->seen++;
    if (!isnan(loss)) p->smooth = p->seen == 1 ? loss : 0.99 * p->smooth + 0.01 * loss;
    double now = cli_now();
    bool first = p->seen == 1 && !p->tty;
    if (now - p->last_print >= p->period || step == p->total || first) {
        p->last_print = now;
        print_line(p, step, loss);
    }
}

void cli_progress_note(cli_progress *p, const char *fmt, ...) {
    if (p->tty && p->width) {
        fprintf(p->f, "\r%*s\r", p->width, "");
        p->width = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fflush(p->f);
}

void cli_progress_end(cli_progress *p) {
    if (p->tty && p->width) fputc('\n', p->f);
    p->width = 0;
    fflush(p->f);
}
