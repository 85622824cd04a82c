/* nanodiff info: what a checkpoint holds, read without building a model. */
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff info CHECKPOINT|RUN [--tensors]",
    "Prints what a checkpoint holds: the training step, the settings it was trained with, "
    "the parameter count of the model, of Adam's state and of the EMA, the random state, "
    "and with --tensors every tensor's name and shape. RUN is a training folder."};

static bool starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

int cli_info(int argc, char **argv) {
    bool tensors = false;
    cli_option o[] = {
        CLI_OPT_FLAG("--tensors", &tensors, "list every tensor"),
    };
    nd_error err;
    const char *pos[1];
    int npos;
    int pr = cli_parse(argc, argv, o, 1, &help, pos, 1, &npos, &err);
    if (pr == 1) return 0;
    if (pr == ND_OK && npos != 1) pr = nd_error_set(&err, "which checkpoint?");
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff info: %s\n(see nanodiff info --help)\n", err.message);
        return CLI_EXIT_USAGE;
    }
    char path[1100];
    if (cli_checkpoint_path(pos[0], path, sizeof path, &err) != ND_OK)
        return cli_fail("info", &err);
    nd_safetensors st;
    if (nd_safetensors_load(path, &st, &err) != ND_OK) return cli_fail("info", &err);
    int64_t count[3] = {0, 0, 0}, ntensors[3] = {0, 0, 0};
    for (int i = 0; i < st.n; i++) {
        int k = starts(st.names[i], "optimizer.") ? 1 : starts(st.names[i], "ema.") ? 2 : 0;
        count[k] += nd_numel(st.tensors[i]);
        ntensors[k]++;
    }
    const char *step = nd_safetensors_meta(&st, "step"),
               *config = nd_safetensors_meta(&st, "config");
    printf("%s\n", path);
    printf("  format     %s\n",
           nd_safetensors_meta(&st, "format") ? nd_safetensors_meta(&st, "format") : "(none)");
    printf("  step       %s\n", step ? step : "(none)");
    printf("  model      %lld parameters in %lld tensors\n", (long long)count[0],
           (long long)ntensors[0]);
    if (ntensors[1]) {
        const char *kind = nd_safetensors_meta(&st, "optimizer.kind"),
                   *steps = nd_safetensors_meta(&st, "optimizer.steps");
        printf("  optimizer  %s after %s steps: %lld numbers in %lld tensors\n", kind ? kind : "?",
               steps ? steps : "?", (long long)count[1], (long long)ntensors[1]);
    }
    if (ntensors[2]) {
        const char *decay = nd_safetensors_meta(&st, "ema.decay"),
                   *updates = nd_safetensors_meta(&st, "ema.updates");
        printf("  ema        decay %s, %s updates\n", decay ? decay : "?", updates ? updates : "?");
    }
    const char *seed = nd_safetensors_meta(&st, "rng.seed");
    if (seed)
        printf("  rng        seed %s, stream %s, offset %s\n", seed,
               nd_safetensors_meta(&st, "rng.stream"), nd_safetensors_meta(&st, "rng.offset"));
    int rc = ND_OK;
    if (config) {
        cli_spec s;
        if (cli_spec_parse(config, &s, &err) != ND_OK) {
            printf("  settings   (unreadable: %s)\n", err.message);
            rc = ND_ERR;
        } else {
            printf("  settings\n");
            for (const char *p = config; *p;) {
                size_t len = strcspn(p, "\n");
                printf("    %.*s\n", (int)len, p);
                p += len + (p[len] == '\n');
            }
            if (!strcmp(s.model, "unet"))
                printf("  compute    %.3f G multiply-adds per image and step\n",
                       1e-9 * (double)nd_unet_macs(&s.unet));
        }
    } else {
        printf("  settings   (none: not written by nanodiff train)\n");
    }
    if (tensors) {
        printf("  tensors\n");
        for (int i = 0; i < st.n; i++) {
            char shape[ND_SHAPE_STR_LEN];
            printf("    %-48s %s\n", st.names[i],
                   nd_shape_str(st.tensors[i]->shape, st.tensors[i]->ndim, shape));
        }
    }
    nd_safetensors_free(&st);
    if (rc != ND_OK) {
        nd_error e = err;
        nd_error_set(&err, "%s: its settings are damaged: %s", path, e.message);
        return cli_fail("info", &err);
    }
    return 0;
}
