/*
 * Dataset reader benchmark (issue 3): kb_dataset_read against pandas.read_csv on the same
 * files, in the same command, one fresh process per measurement (so peak memory is that
 * read's alone).
 *
 *   bench_csv [--runs N] [--peer SCRIPT] FILE...     time and peak memory, kb vs pandas
 *   bench_csv generate OUT.csv ROWS COLS SEED         write a seeded numeric CSV
 *
 * For each file: kb's median wall and CPU (user + system) time over N runs (default 3) of
 * kb_dataset_read (which includes the fingerprint: the CPU time of kb_dataset_fingerprint
 * alone is shown too, in parentheses), the peer's medians of pandas.read_csv (default C engine) and of read_csv
 * with float_precision="round_trip" (correct rounding, as kb), and the peak resident memory
 * growth of each (max RSS minus RSS before reading). The peer is /usr/bin/python3 SCRIPT.
 * Ratios are peer / kb (above 1: kb is faster or smaller). CPU time is the steadier figure on
 * a shared machine.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/core/rng.h"
#include "engine/dataset.h"

/* CPU seconds (user + system) of this process so far. */
static double cpu_now_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Resident memory now, in MiB (from /proc/self/statm). */
static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) {
            res = 0;
        }
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

typedef struct sample {
    double read_s, cpu_s, fingerprint_s, peak_mib;
    size_t rows, cols;
} sample;

/* One read in a child process; the result comes back through a pipe. */
static int measure_kb(const char *path, sample *out)
{
    int fd[2];
    if (pipe(fd) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        sample s = {0};
        double base = rss_mib();
        kb_dataset d;
        kb_error err = KB_ERROR_INIT;
        double t0 = now_s(), c0 = cpu_now_s();
        if (kb_dataset_read(&d, path, NULL, &err) != KB_OK) {
            fprintf(stderr, "bench_csv: %s\n", err.msg);
            _exit(1);
        }
        s.read_s = now_s() - t0;
        s.cpu_s = cpu_now_s() - c0;
        char fp[65];
        c0 = cpu_now_s();
        kb_dataset_fingerprint(fp, &d);
        s.fingerprint_s = cpu_now_s() - c0;
        s.rows = d.n_rows;
        s.cols = d.n_cols;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        s.peak_mib = (double)ru.ru_maxrss / 1024.0 - base;
        kb_dataset_release(&d);
        if (write(fd[1], &s, sizeof s) != (ssize_t)sizeof s) {
            _exit(1);
        }
        _exit(0);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], out, sizeof *out);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof *out && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int generate(const char *path, size_t rows, size_t cols, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    kb_rng rng;
    kb_rng_seed(&rng, seed);
    for (size_t j = 0; j < cols; j++) {
        fprintf(f, "x%zu,", j + 1);
    }
    fputs("target\n", f);
    /* four spellings real files use: fixed 6 decimals, integers, exponents, full repr */
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            switch (j % 4) {
            case 0: fprintf(f, "%.6f,", kb_rng_normal(&rng)); break;
            case 1: fprintf(f, "%d,", (int)kb_rng_below(&rng, 1000)); break;
            case 2: fprintf(f, "%.4e,", -log1p(-kb_rng_uniform(&rng)) * 1e-3); break;
            default: fprintf(f, "%.17g,", kb_rng_uniform(&rng)); break;
            }
        }
        fprintf(f, "%d\n", (int)kb_rng_below(&rng, 3));
    }
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "generate") == 0) {
        return generate(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                        strtoull(argv[5], NULL, 10));
    }
    int runs = 3, i = 1;
    const char *peer = "tools/bench/bench_csv.py";
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc) {
            break;
        }
        if (strcmp(argv[i], "--runs") == 0) {
            runs = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--peer") == 0) {
            peer = argv[i + 1];
        }
    }
    if (i >= argc || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: bench_csv [--runs N] [--peer SCRIPT] FILE...\n"
                        "       bench_csv generate OUT.csv ROWS COLS SEED\n");
        return 2;
    }
    printf("%-26s %8s %5s | %7s %7s %7s %7s | %7s %7s %7s %7s %7s | %7s %7s %6s\n", "file",
           "rows", "cols", "kb_s", "pd_s", "rt_s", "x_pd", "kb_cpu", "(fp)", "pd_cpu", "rt_cpu",
           "x_pd", "kb_MiB", "pd_MiB", "x_mem");
    for (; i < argc; i++) {
        const char *path = argv[i];
        double t[99], c[99], fp[99], peak = 0;
        sample s = {0};
        for (int r = 0; r < runs; r++) {
            if (measure_kb(path, &s) != 0) {
                fprintf(stderr, "bench_csv: reading %s failed\n", path);
                return 1;
            }
            t[r] = s.read_s;
            c[r] = s.cpu_s;
            fp[r] = s.fingerprint_s;
            peak = fmax(peak, s.peak_mib);
        }
        double kb_s = median(t, runs), kb_cpu = median(c, runs), fp_s = median(fp, runs);
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %d '%s'", peer, runs, path);
        FILE *p = popen(cmd, "r");
        double pd_s = NAN, rt_s = NAN, pd_cpu = NAN, rt_cpu = NAN, pd_mib = NAN;
        if (p == NULL ||
            fscanf(p, "%lf %lf %lf %lf %lf", &pd_s, &rt_s, &pd_cpu, &rt_cpu, &pd_mib) != 5) {
            fprintf(stderr, "bench_csv: peer failed on %s\n", path);
        }
        if (p != NULL) {
            pclose(p);
        }
        const char *base = strrchr(path, '/');
        printf("%-26s %8zu %5zu | %7.3f %7.3f %7.3f %7.2f | %7.3f %7.3f %7.3f %7.3f %7.2f | "
               "%7.1f %7.1f %6.2f\n",
               base != NULL ? base + 1 : path, s.rows, s.cols, kb_s, pd_s, rt_s, pd_s / kb_s,
               kb_cpu, fp_s, pd_cpu, rt_cpu, pd_cpu / kb_cpu, peak, pd_mib, pd_mib / peak);
        fflush(stdout);
    }
    return 0;
}
