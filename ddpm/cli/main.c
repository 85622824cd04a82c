/* The nanodiff command: one word picks the job. */
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *about;
} commands[] = {
    {"demo", cli_demo, "(the default) a tour of the layers, DDPM on two moons and on shapes"},
    {"train", cli_train, "train a denoiser (Algorithm 1) with checkpoints, a loss log, --resume"},
    {"sample", cli_sample, "draw samples (Algorithm 2) from a checkpoint; the reverse chain"},
    {"eval", cli_eval, "the bound in bits/dim, term by term; progressive coding"},
    {"field", cli_field, "the score a model of 2-D points learned, as arrows"},
    {"forward", cli_forward, "show the forward process q(x_t | x_0) on a data set"},
    {"encode", cli_encode, "DDIM's deterministic x_0 -> x_T -> x_0, and how well it comes back"},
    {"interpolate", cli_interpolate, "mix two images' latents at step t and decode (Figure 8)"},
    {"classifier", cli_classifier, "train the feature network that `score` uses"},
    {"score", cli_score, "how close samples are to the data (Frechet or energy distance)"},
    {"info", cli_info, "what a checkpoint holds"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f) {
    fprintf(f, "usage: nanodiff [COMMAND] [options]\n\n"
               "nanodiff is a C11 tensor/autograd micro-framework with DDPM (Ho, Jain and\n"
               "Abbeel 2020) on top.\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].about);
    fprintf(f, "  help        this text\n\n"
               "`nanodiff COMMAND --help` tells each command's options. Try:\n"
               "  nanodiff train --data moons --out runs/moons && nanodiff sample runs/moons\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && argv[1][0] != '-') {
        if (!strcmp(argv[1], "help")) {
            usage(stdout);
            return 0;
        }
        for (int i = 0; i < NCOMMANDS; i++)
            if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
        fprintf(stderr, "nanodiff: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    return cli_demo(argc - 1, argv + 1);
}
