/* Command-line options from a table: parsing with range checks, and the
 * --help text, defaults included, from the same table. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

cli_option *cli_find(cli_option *opts, int nopts, const char *name) {
    for (int i = 0; i < nopts; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    nd_fatal("cli_find", "no option %s", name);
}

/* Whether word is one of the '|'-separated choices. */
static bool is_choice(const char *choices, const char *word) {
    size_t n = strlen(word);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncmp(c, word, n)) return true;
        if (!bar) break;
        c = bar + 1;
    }
    return false;
}

bool cli_plain_integer(const char *s) {
    if (*s == '-') s++;
    if (*s == '0') return s[1] == 0;
    if (*s < '1' || *s > '9') return false;
    while (*s >= '0' && *s <= '9') s++;
    return *s == 0;
}

static int parse_int(const char *name, const char *text, double lo, double hi, int64_t *out,
                     nd_error *err) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!cli_plain_integer(text) || *end || errno == ERANGE)
        return nd_error_set(err, "%s: '%s' is not a whole number", name, text);
    if ((double)v < lo || (double)v > hi)
        return nd_error_set(err, "%s: %lld is outside %.0f..%.0f", name, v, lo, hi);
    *out = v;
    return ND_OK;
}

static int parse_real(const char *name, const char *text, double lo, double hi, double *out,
                      nd_error *err) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno == ERANGE || !isfinite(v))
        return nd_error_set(err, "%s: '%s' is not a number", name, text);
    if (v < lo || v > hi) return nd_error_set(err, "%s: %g is outside [%g, %g]", name, v, lo, hi);
    *out = v;
    return ND_OK;
}

int cli_int_list(const char *name, const char *text, int64_t lo, int64_t hi, int64_t *out, int max,
                 int *n, nd_error *err) {
    *n = 0;
    const char *p = text;
    for (;;) {
        char word[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof word)
            return nd_error_set(err, "%s: '%s' is not a list of whole numbers like 1,2,2", name,
                                text);
        if (*n == max) return nd_error_set(err, "%s: more than %d numbers", name, max);
        memcpy(word, p, len);
        word[len] = 0;
        if (parse_int(name, word, (double)lo, (double)hi, &out[*n], err) != ND_OK) return ND_ERR;
        (*n)++;
        if (!p[len]) return ND_OK;
        p += len + 1;
    }
}

int cli_parse(int argc, char **argv, cli_option *opts, int nopts, const cli_command_help *h,
              const char **pos, int max_pos, int *npos, nd_error *err) {
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_print_help(stdout, opts, nopts, h);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || !strcmp(a, "--")) {
            if (*npos == max_pos)
                return nd_error_set(
                    err, max_pos ? "unexpected '%s' (one %s only)" : "unexpected '%s'%.0s", a,
                    "argument");
            pos[(*npos)++] = a;
            continue;
        }
        /* --name=value or --name value */
        char name[64];
        const char *eq = strchr(a, '='), *v;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) return nd_error_set(err, "unknown option '%.60s...'", a);
        memcpy(name, a, len);
        name[len] = 0;
        cli_option *o = NULL;
        for (int k = 0; k < nopts; k++)
            if (!strcmp(opts[k].name, name)) o = &opts[k];
        if (!o) return nd_error_set(err, "unknown option '%s'", name);
        if (o->given) return nd_error_set(err, "%s is given twice", name);
        o->given = true;
        if (o->kind == CLI_FLAG) {
            if (eq) return nd_error_set(err, "%s takes no value", name);
            *(bool *)o->value = true;
            continue;
        }
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 == argc) return nd_error_set(err, "%s needs a value (%s)", name, o->arg);
            v = argv[++i];
        }
        int rc = ND_OK;
        switch (o->kind) {
        case CLI_INT:
            rc = parse_int(name, v, o->lo, o->hi, o->value, err);
            break;
        case CLI_REAL:
            rc = parse_real(name, v, o->lo, o->hi, o->value, err);
            break;
        case CLI_TEXT:
            if (!*v)
                rc = nd_error_set(err, "%s needs a value (%s)", name, o->arg);
            else if (o->choices && !is_choice(o->choices, v))
                rc = nd_error_set(err, "%s: '%s' is not one of %s", name, v, o->choices);
            else
                *(const char **)o->value = v;
            break;
        case CLI_FLAG:
            break;
        }
        if (rc != ND_OK) return ND_ERR;
    }
    return 0;
}

/* Writes text wrapped at 78 columns, each line indented by indent, the
 * first starting at column `col`. */
static void wrap(FILE *f, const char *text, int indent, int col) {
    const char *p = text;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (col > indent && col + 1 + (int)word > 78) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, word, f);
        col += (int)word;
        p += word;
        while (*p == ' ') p++;
    }
    fputc('\n', f);
}

void cli_print_help(FILE *f, const cli_option *opts, int nopts, const cli_command_help *h) {
    fprintf(f, "usage: %s\n\n", h->usage);
    wrap(f, h->about, 0, 0);
    fprintf(f, "\noptions:\n");
    for (int i = 0; i < nopts; i++) {
        const cli_option *o = &opts[i];
        char head[64], text[768];
        snprintf(head, sizeof head, "  %s%s%s", o->name, o->kind == CLI_FLAG ? "" : " ",
                 o->kind == CLI_FLAG ? "" : o->arg);
        switch (o->kind) {
        case CLI_FLAG:
            snprintf(text, sizeof text, "%s", o->help);
            break;
        case CLI_INT:
            snprintf(text, sizeof text, "%s (default %lld)", o->help,
                     (long long)*(const int64_t *)o->value);
            break;
        case CLI_REAL:
            snprintf(text, sizeof text, "%s (default %g)", o->help, *(const double *)o->value);
            break;
        case CLI_TEXT: {
            const char *d = *(const char *const *)o->value;
            if (d && *d)
                snprintf(text, sizeof text, "%s (default %s)", o->help, d);
            else
                snprintf(text, sizeof text, "%s", o->help);
            break;
        }
        }
        fputs(head, f);
        int col = (int)strlen(head);
        if (col >= 24) {
            fprintf(f, "\n%24s", "");
            col = 24;
        } else {
            fprintf(f, "%*s", 24 - col, "");
            col = 24;
        }
        wrap(f, text, 24, col);
    }
    fprintf(f, "  -h, --help            this text\n");
}

int cli_parse_run(int argc, char **argv, cli_option *opts, int nopts, const cli_command_help *h,
                  const char **run, const char *prefix, nd_error *err) {
    int npos;
    int pr = cli_parse(argc, argv, opts, nopts, h, run, 1, &npos, err);
    if (pr != ND_OK) return pr;
    if (npos != 1) return nd_error_set(err, "which run? (a folder or checkpoint)");
    if (strchr(prefix, '/')) return nd_error_set(err, "--prefix is a name, not a path");
    return ND_OK;
}

int cli_usage_error(const char *cmd, const nd_error *err) {
    fprintf(stderr, "nanodiff %s: %s\n(see nanodiff %s --help)\n", cmd, err->message, cmd);
    return CLI_EXIT_USAGE;
}
