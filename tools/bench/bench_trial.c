/*
 * Trial-runner overhead (tools/trial.h): the wall clock per trial of a trivial trial command
 * (it prints one curve point and a final line) run N times
 *   - floor: fork + exec `/bin/sh -c CMD` + read its stdout to EOF + waitpid, nothing else;
 *   - kb: kb_trial_pool (trial dir, template-free rendering, two log files, JSON-lines
 *     parsing, result with curve), one trial at a time (P = 1) and P at once;
 *   - peer (with --python PATH): Python's subprocess.run([sh, -c, CMD], capture_output=True,
 *     cwd=fresh dir), its stdout and stderr written to two files there, json.loads of each
 *     line, in one Python process (the usual way a Python HPO script runs a trial command,
 *     doing the same file work as kb).
 * Wall clock depends on the machine's load; the parent's own CPU time (getrusage, children
 * excluded; Python's time.process_time) is the steadier figure. The fresh directory and the
 * two log files cost inode allocations: on ext4 most of kb's parent CPU is there.
 * Output: one line per method with ms per trial, and the ratios to the floor.
 *
 * Usage: bench_trial [--n N] [--jobs P] [--work-dir DIR] [--python /usr/bin/python3]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/trial.h"

#define CMD "printf '{\"step\":1,\"v\":0.5}\\n{\"final\":{\"v\":0.5}}\\n'"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of this process, children excluded */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

typedef struct cost {
    double wall, cpu; /* seconds per trial; wall < 0: failed */
} cost;

static cost run_floor(size_t n)
{
    cost fail = {-1, -1};
    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < n; i++) {
        int fd[2];
        if (pipe(fd) != 0) {
            return fail;
        }
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fd[1], 1);
            close(fd[0]);
            close(fd[1]);
            execl("/bin/sh", "sh", "-c", CMD, (char *)NULL);
            _exit(127);
        }
        close(fd[1]);
        char buf[4096];
        while (read(fd[0], buf, sizeof buf) > 0) {
        }
        close(fd[0]);
        waitpid(pid, NULL, 0);
    }
    cost c = {(now_s() - t0) / (double)n, (cpu_s() - c0) / (double)n};
    return c;
}

static cost run_kb(size_t n, size_t jobs, const char *work_dir)
{
    cost fail = {-1, -1};
    kb_error err = KB_ERROR_INIT;
    kb_trial_pool_opts o = KB_TRIAL_POOL_OPTS_INIT;
    o.command = CMD;
    o.work_dir = work_dir;
    o.max_jobs = jobs;
    o.objective = "v";
    kb_trial_pool *pool = NULL;
    if (kb_trial_pool_new(&pool, &o, &err) != KB_OK) {
        fprintf(stderr, "bench_trial: %s\n", err.msg);
        return fail;
    }
    kb_param config[] = {{(char *)"x", {KB_VALUE_TYPE_FLOAT, 0.5, 0, NULL, 0}}};
    size_t started = 0, done = 0, bad = 0;
    double t0 = now_s(), c0 = cpu_s();
    while (done < n) {
        while (started < n && kb_trial_pool_n_free(pool) > 0) {
            if (kb_trial_pool_start(pool, started, config, 1, NULL, 0, 0, &err) != KB_OK) {
                fprintf(stderr, "bench_trial: %s\n", err.msg);
                kb_trial_pool_free(pool);
                return fail;
            }
            started++;
        }
        kb_trial_event ev = KB_TRIAL_EVENT_INIT;
        if (kb_trial_pool_next(&ev, pool, -1, &err) != KB_OK) {
            fprintf(stderr, "bench_trial: %s\n", err.msg);
        }
        if (ev.kind == KB_TRIAL_EVENT_DONE) {
            done++;
            bad += ev.result.status != KB_RUN_STATUS_OK || ev.result.objective != 0.5;
        }
        kb_trial_event_release(&ev);
    }
    cost c = {(now_s() - t0) / (double)n, (cpu_s() - c0) / (double)n};
    kb_trial_pool_free(pool);
    if (bad > 0) {
        fprintf(stderr, "bench_trial: %zu trials did not report v = 0.5\n", bad);
        return fail;
    }
    return c;
}

static cost run_python(const char *python, size_t n, const char *work_dir)
{
    cost c = {-1, -1};
    char script[8192];
    snprintf(script, sizeof script,
             "%s - <<'EOF'\n"
             "import json, os, subprocess, time\n"
             "cmd = r\"\"\"%s\"\"\"\n"
             "t0, c0 = time.perf_counter(), time.process_time()\n"
             "for i in range(%zu):\n"
             "    d = os.path.join(r'''%s''', 'py-%%04d' %% i)\n"
             "    os.makedirs(d, exist_ok=True)\n"
             "    p = subprocess.run(['/bin/sh', '-c', cmd], capture_output=True, cwd=d)\n"
             "    for name, data in (('stdout.log', p.stdout), ('stderr.log', p.stderr)):\n"
             "        with open(os.path.join(d, name), 'wb') as f:\n"
             "            f.write(data)\n"
             "    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]\n"
             "    assert p.returncode == 0 and rows[-1]['final']['v'] == 0.5\n"
             "print((time.perf_counter() - t0) / %zu, (time.process_time() - c0) / %zu)\n"
             "EOF\n",
             python, CMD, n, work_dir, n, n);
    FILE *p = popen(script, "r");
    if (p == NULL) {
        return c;
    }
    if (fscanf(p, "%lf %lf", &c.wall, &c.cpu) != 2) {
        c.wall = c.cpu = -1;
    }
    pclose(p);
    return c;
}

int main(int argc, char **argv)
{
    size_t n = 200, jobs = 4;
    const char *work_dir = "bench-trial-work";
    const char *python = NULL;
    static const struct option longopts[] = {{"n", required_argument, NULL, 'n'},
                                             {"jobs", required_argument, NULL, 'j'},
                                             {"work-dir", required_argument, NULL, 'w'},
                                             {"python", required_argument, NULL, 'p'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': n = strtoul(optarg, NULL, 10); break;
        case 'j': jobs = strtoul(optarg, NULL, 10); break;
        case 'w': work_dir = optarg; break;
        case 'p': python = optarg; break;
        default:
            fprintf(stderr, "usage: bench_trial [--n N] [--jobs P] [--work-dir DIR] "
                            "[--python PATH]\n");
            return 2;
        }
    }
    if (n == 0 || jobs == 0) {
        fprintf(stderr, "bench_trial: --n and --jobs must be positive\n");
        return 2;
    }
    /* each method makes its trial directories in a directory of its own */
    char dir_p1[4200], dir_pn[4200], dir_py[4200];
    snprintf(dir_p1, sizeof dir_p1, "%.4000s/kb-p1", work_dir);
    snprintf(dir_pn, sizeof dir_pn, "%.4000s/kb-p%zu", work_dir, jobs);
    snprintf(dir_py, sizeof dir_py, "%.4000s/python", work_dir);
    cost fl = run_floor(n);
    cost kb1 = run_kb(n, 1, dir_p1);
    cost kbp = run_kb(n, jobs, dir_pn);
    cost py = {-1, -1};
    if (python != NULL) {
        py = run_python(python, n, dir_py);
    }
    if (fl.wall <= 0 || kb1.wall <= 0 || kbp.wall <= 0) {
        return 1;
    }
    printf("trials: %zu, command: %s\n", n, CMD);
    printf("method                          wall ms/trial  (x floor)   parent CPU ms/trial  (x floor)\n");
    printf("floor  fork+exec+wait, P=1      %8.3f       %5.2fx      %8.3f             %5.2fx\n",
           fl.wall * 1e3, 1.0, fl.cpu * 1e3, 1.0);
    printf("kb     kb_trial_pool, P=1       %8.3f       %5.2fx      %8.3f             %5.2fx\n",
           kb1.wall * 1e3, kb1.wall / fl.wall, kb1.cpu * 1e3, kb1.cpu / fl.cpu);
    printf("kb     kb_trial_pool, P=%-2zu      %8.3f       %5.2fx      %8.3f             %5.2fx\n",
           jobs, kbp.wall * 1e3, kbp.wall / fl.wall, kbp.cpu * 1e3, kbp.cpu / fl.cpu);
    if (py.wall > 0) {
        printf("peer   python subprocess.run    %8.3f       %5.2fx      %8.3f             %5.2fx\n",
               py.wall * 1e3, py.wall / fl.wall, py.cpu * 1e3, py.cpu / fl.cpu);
        printf("python / kb (P=1): wall %.2fx, parent CPU %.2fx\n", py.wall / kb1.wall,
               py.cpu / kb1.cpu);
    }
    return 0;
}
