# gen_runs N_TASKS RUNS_PER_TASK [SEED]: print kb JSON Lines — the tasks, then their runs
# (6 hyperparameters, a final metric and a 20-point learning curve each), deterministic.
# Sourced by CLI tests; plain awk so the tests need nothing but the kb binary.
gen_runs() {
    awk -v T="$1" -v R="$2" -v S="${3:-1}" 'BEGIN {
        srand(S);
        for (t = 0; t < T; t++)
            printf "{\"kind\":\"task\",\"id\":\"task-%d\",\"name\":\"synthetic %d\",\"type\":\"classification\",\"team\":\"team-%d\"}\n", t, t, t % 3;
        for (t = 0; t < T; t++) for (r = 0; r < R; r++) {
            lr = exp(log(1e-4) + rand() * log(1e4)); loss = 0.2 + rand();
            printf "{\"kind\":\"run\",\"id\":\"run-%d-%d\",\"task_id\":\"task-%d\",\"space\":\"mlp\",", t, r, t;
            printf "\"config\":{\"base_lr\":%.6g,\"momentum\":%.4f,\"batch_size\":%d,\"weight_decay\":%.6g,\"optimizer\":\"%s\",\"layers\":%d},", lr, rand(), 2 ^ int(4 + rand() * 4), exp(log(1e-6) + rand() * log(1e4)), (rand() < 0.5 ? "SGD" : "Adam"), 1 + int(rand() * 3);
            printf "\"status\":\"ok\",\"objective\":\"val_loss\",\"direction\":\"minimize\",\"metrics\":{\"val_loss\":%.6f},\"curve\":[", loss;
            for (s = 1; s <= 20; s++) printf "%s{\"step\":%d,\"val_loss\":%.6f}", (s > 1 ? "," : ""), s * 100, loss + 2.0 / s;
            printf "],\"cost_s\":%.3f}\n", 1 + rand() * 100;
        }
    }'
}
