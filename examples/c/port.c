/* port.c: AdamX (AdamNX), AdamS (paper and official-code forms) and AlphaAdam (every option of
 * refopt's reconstructed family) in C99, run through refopt's file mode:
 *
 *     refopt verify adamx --write-inputs cases/
 *     ./refopt_port cases/            # reads cases/index.txt, writes each case's output/
 *     refopt compare adamx cases/
 *
 * Written from the equations in refopt/rules/{adamx,adams,alphaadam}.py and the proofs/spec
 * files (adamx.md, adams.md, alphaadam.md)
 * (no third-party code).  Per case the port validates the hyperparameters itself (a refusal is
 * output/error.txt), declares what it does not implement (output/unsupported.txt: AdamX's
 * state_dtype = float16, an unknown rule or hyperparameter) and otherwise writes
 * output/param.<i>.bin, exp_avg.<i>.bin, exp_avg_sq.<i>.bin and, for AlphaAdam, mask.<i>.bin
 * (uint8), alpha.<i>.bin (float64) and kept.<i>.bin (int64).
 *
 * Build: cc -O2 -std=c99 -ffp-contract=off -o refopt_port port.c refopt_io.c -lm
 * (no -ffast-math: it reorders and contracts the arithmetic the golden values pin down). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refopt_io.h"

enum { RULE_ADAMX, RULE_ADAMS, RULE_ALPHAADAM };
enum { NF_RAISE, NF_SKIP, NF_PROPAGATE };
enum { SD_NONE, SD_F64, SD_F32, SD_BF16 };
enum { MS_M_PREV, MS_M_T, MS_ONES };
enum { AR_COUNT, AR_COUNT1, AR_NORM, AR_SOFT, AR_NONE };
enum { FS_UNMASKED, FS_CAUTIOUS, FS_AS_IS };
enum { OK = 0, INVALID = 1, UNSUPPORTED = 2 };

typedef struct {
    int rule;
    double lr, b1, b2, eps, wd;
    int nonfinite;
    int coef_naive, wd_l2, state_dtype;                      /* AdamX */
    int bias_correction;                                     /* AdamS: the official-code form */
    int mask_source, strict, alpha_rule, first_step, bc_torch;   /* AlphaAdam */
    double density_floor, alpha_max, gamma;
} hp;

/* The per-step scalars, in double; each rule reads its own. */
typedef struct {
    double lr, decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    double bias_correction1, step_size, denom_div;
} sc64;

/* Round a float32 to bfloat16 (nearest, ties to even), as a float32; non-finite kept. */
static float bf16_round(float x) {
    if (!isfinite(x)) return x;
    uint32_t bits;
    memcpy(&bits, &x, 4);
    uint64_t b = bits;
    b = ((b + ((b >> 16) & 1) + 0x7FFF) >> 16) << 16;
    bits = (uint32_t)b;
    memcpy(&x, &bits, 4);
    return x;
}

static double alpha_for(const hp *h, long kept, long size) {
    double q = size ? (double)kept / (double)size : 1.0;
    switch (h->alpha_rule) {
    case AR_COUNT: return 1.0 / (q > h->density_floor ? q : h->density_floor);
    case AR_COUNT1: return (double)size / (double)(kept + 1);
    case AR_SOFT: return q > h->density_floor ? q : h->density_floor;
    default: return 1.0;   /* none (norm is computed from u by the caller) */
    }
}

static int step_scalars(const hp *h, long t, double lr, sc64 *s, size_t elem, char *err,
                        size_t errlen) {
    memset(s, 0, sizeof *s);
    if (!(isfinite(lr) && lr >= 0)) {
        snprintf(err, errlen, "lr must be finite and >= 0, got %g at t=%ld", lr, t);
        return -1;
    }
    double b1 = h->b1, b2 = h->b2, p1 = pow(b1, (double)t);
    s->lr = lr;
    s->eps = h->eps;
    s->decay = 1.0 - lr * h->wd;
    if (h->rule == RULE_ADAMX) {
        s->beta1 = (b1 - p1) / (1.0 - p1);
        s->one_minus_beta1 = (1.0 - b1) / (1.0 - p1);
        if (h->coef_naive) {
            double e = 1.0 - b2;
            s->beta2 = (1.0 - pow(b2, e * (double)(t - 1))) / (1.0 - pow(b2, e * (double)t));
            s->one_minus_beta2 = 1.0 - s->beta2;
        } else {
            double ell = (1.0 - b2) * log(b2);
            s->beta2 = expm1((double)(t - 1) * ell) / expm1((double)t * ell);
            s->one_minus_beta2 = expm1(ell) * exp((double)(t - 1) * ell) / expm1((double)t * ell);
        }
        if (h->wd_l2) { s->decay = 1.0; s->l2 = h->wd; }
    } else {
        s->beta1 = b1; s->one_minus_beta1 = 1.0 - b1;
        s->beta2 = b2; s->one_minus_beta2 = 1.0 - b2;
        s->bias_correction1 = (h->rule == RULE_ADAMS && !h->bias_correction) ? 1.0 : 1.0 - p1;
        if (h->rule == RULE_ALPHAADAM) {
            double bc2 = 1.0 - pow(b2, (double)t);
            if (h->bc_torch) { s->step_size = lr / s->bias_correction1; s->denom_div = sqrt(bc2); }
            else { s->step_size = lr * sqrt(bc2) / s->bias_correction1; s->denom_div = 1.0; }
        }
    }
    /* The tensor dtype must hold every per-step scalar (refopt refuses what overflows). */
    const double all[] = {s->lr, s->decay, s->l2, s->beta1, s->one_minus_beta1, s->beta2,
                          s->one_minus_beta2, s->eps, s->bias_correction1, s->step_size,
                          s->denom_div};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
        double x = elem == 4 ? (double)(float)all[k] : all[k];
        if (!isfinite(x)) {
            snprintf(err, errlen, "a per-step scalar at t=%ld (lr=%g) is not finite in the "
                     "tensor dtype", t, lr);
            return -1;
        }
    }
    if (h->eps != 0 && elem == 4 && (float)h->eps == 0) {
        snprintf(err, errlen, "eps=%g rounds to 0 in float32", h->eps);
        return -1;
    }
    return 0;
}

#define REAL double
#define SQRT sqrt
#define FN(x) x##_f64
#include "rules_impl.h"
#undef REAL
#undef SQRT
#undef FN
#define REAL float
#define SQRT sqrtf
#define FN(x) x##_f32
#include "rules_impl.h"
#undef REAL
#undef SQRT
#undef FN

/* -- hyperparameters: read and validate (refopt's rules and messages) ------------------------ */

typedef struct { const rf_case *c; char *msg; size_t len; int status; } vctx;

static const rf_hyper *need(vctx *v, const char *name) {
    const rf_hyper *h = rf_hyper_get(v->c, name);
    if (!h && v->status == OK) {
        snprintf(v->msg, v->len, "hyperparameter %s is missing; this port reads it", name);
        v->status = UNSUPPORTED;
    }
    return h;
}

static void invalid(vctx *v, const char *fmt, const char *name, const char *value) {
    if (v->status != OK) return;
    snprintf(v->msg, v->len, fmt, name, value);
    v->status = INVALID;
}

/* A real number; check: 0 finite >= 0, 1 in [0, 1), 2 in (0, 1), 3 in (0, 1], 4 in [1, inf). */
static double real(vctx *v, const char *name, int check) {
    const rf_hyper *h = need(v, name);
    if (!h) return 0;
    if (strcmp(h->type, "f64")) { invalid(v, "%s must be a real number, got %s", name, h->type);
                                  return 0; }
    double x = strtod(h->value, NULL);
    static const char *ranges[] = {"must be finite and >= 0", "must be in [0, 1)",
                                   "must be in (0, 1)", "must be in (0, 1]",
                                   "must be in [1, inf)"};
    int ok = check == 0 ? isfinite(x) && x >= 0
           : check == 1 ? x >= 0 && x < 1
           : check == 2 ? x > 0 && x < 1
           : check == 3 ? x > 0 && x <= 1
           : x >= 1 && !isnan(x);          /* NaN fails every comparison: refused too */
    if (!ok) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "%%s %s, got %%s", ranges[check]);
        invalid(v, fmt, name, h->value);
    }
    return x;
}

static int boolean(vctx *v, const char *name) {
    const rf_hyper *h = need(v, name);
    if (!h) return 0;
    if (strcmp(h->type, "bool")) { invalid(v, "%s must be a bool, got %s", name, h->type);
                                   return 0; }
    return h->value[0] == '1';
}

/* The index of the value in the NULL-terminated list of choices. */
static int choice(vctx *v, const char *name, const char *const *allowed) {
    const rf_hyper *h = need(v, name);
    if (!h) return 0;
    const char *value = strcmp(h->type, "none") ? h->value : "none";
    if (strcmp(h->type, "str") && strcmp(h->type, "none")) {
        invalid(v, "%s must be a str, got %s", name, h->type);
        return 0;
    }
    for (int k = 0; allowed[k]; k++)
        if (!strcmp(allowed[k], value)) return k;
    invalid(v, "%s: %s is not one of its values", name, value);
    return 0;
}

static int read_hyper(const rf_case *c, hp *h, char *msg, size_t len) {
    static const char *const common[] = {"lr", "betas.0", "betas.1", "eps", "weight_decay",
                                         "nonfinite", NULL};
    static const char *const adamx[] = {"coef_form", "weight_decay_mode", "state_dtype", NULL};
    static const char *const adams[] = {"bias_correction", NULL};
    static const char *const alpha[] = {"mask_source", "strict", "alpha_rule", "density_floor",
                                        "alpha_max", "gamma", "first_step", "bias_correction",
                                        NULL};
    vctx v = {c, msg, len, OK};
    memset(h, 0, sizeof *h);
    const char *const *own;
    if (!strcmp(c->rule, "adamx")) { h->rule = RULE_ADAMX; own = adamx; }
    else if (!strcmp(c->rule, "adams")) { h->rule = RULE_ADAMS; own = adams; }
    else if (!strcmp(c->rule, "alphaadam")) { h->rule = RULE_ALPHAADAM; own = alpha; }
    else { snprintf(msg, len, "this port implements adamx, adams and alphaadam, not %s",
                    c->rule); return UNSUPPORTED; }
    for (int k = 0; k < c->n_hyper; k++) {          /* a name this port does not know */
        const char *name = c->hyper[k].name;
        int known = 0;
        for (int j = 0; common[j] && !known; j++) known = !strcmp(common[j], name);
        for (int j = 0; own[j] && !known; j++) known = !strcmp(own[j], name);
        if (!known) { snprintf(msg, len, "hyperparameter %s is not implemented by this port",
                               name); return UNSUPPORTED; }
    }
    static const char *const nonfinite[] = {"raise", "skip", "propagate", NULL};
    h->lr = real(&v, "lr", 0);
    h->b1 = real(&v, "betas.0", 1);
    h->b2 = real(&v, "betas.1", h->rule == RULE_ADAMX ? 2 : 1);   /* AdamX: beta2 > 0 */
    h->wd = real(&v, "weight_decay", 0);
    h->nonfinite = choice(&v, "nonfinite", nonfinite);
    if (h->rule == RULE_ADAMX) {
        static const char *const coef[] = {"expm1", "naive", NULL};
        static const char *const mode[] = {"decoupled", "l2", NULL};
        static const char *const sd[] = {"none", "float64", "float32", "bfloat16", "float16",
                                         NULL};
        h->coef_naive = choice(&v, "coef_form", coef);
        h->wd_l2 = choice(&v, "weight_decay_mode", mode);
        int s = choice(&v, "state_dtype", sd);
        if (s == 4 && v.status == OK) {
            snprintf(msg, len, "state_dtype=float16 (rounding m and v to binary16) is not "
                     "implemented by this port");
            v.status = UNSUPPORTED;
        }
        h->state_dtype = s == 1 ? SD_F64 : s == 2 ? SD_F32 : s == 3 ? SD_BF16 : SD_NONE;
    } else if (h->rule == RULE_ADAMS) {
        h->bias_correction = boolean(&v, "bias_correction");
    } else {
        static const char *const ms[] = {"m_prev", "m_t", "ones", NULL};
        static const char *const ar[] = {"count", "count+1", "norm", "soft", "none", NULL};
        static const char *const fs[] = {"unmasked", "cautious", "as_is", NULL};
        static const char *const bc[] = {"hf", "torch", NULL};
        h->mask_source = choice(&v, "mask_source", ms);
        h->strict = boolean(&v, "strict");
        h->alpha_rule = choice(&v, "alpha_rule", ar);
        h->first_step = choice(&v, "first_step", fs);
        h->bc_torch = choice(&v, "bias_correction", bc);
        h->density_floor = real(&v, "density_floor", 3);
        h->alpha_max = real(&v, "alpha_max", 4);
        h->gamma = real(&v, "gamma", 0);
        if (v.status == OK && (h->alpha_rule == AR_COUNT || h->alpha_rule == AR_SOFT)
            && !isfinite(c->elem == 4 ? (double)(float)(1.0 / h->density_floor)
                                      : 1.0 / h->density_floor)) {
            snprintf(msg, len, "density_floor=%g: 1/density_floor overflows the tensor dtype",
                     h->density_floor);
            v.status = INVALID;
        }
    }
    h->eps = real(&v, "eps", 0);
    return v.status;
}

/* -- one case, and the driver ----------------------------------------------------------------- */

enum { RAN, REFUSED, NOT_SUPPORTED, BROKEN };

static int run_folder(const char *folder) {
    rf_case c;
    char err[512] = "", msg[512] = "";
    if (rf_read_case(folder, &c, err, sizeof err)) {
        fprintf(stderr, "refopt_port: %s\n", err);
        rf_free_case(&c);
        return BROKEN;
    }
    rf_clear_outputs(folder, c.n_tensors);
    hp h;
    int status = read_hyper(&c, &h, msg, sizeof msg), result = RAN;
    if (status == UNSUPPORTED) {
        result = rf_write_message(folder, "unsupported.txt", msg) ? BROKEN : NOT_SUPPORTED;
    } else if (status == INVALID) {
        result = rf_write_message(folder, "error.txt", msg) ? BROKEN : REFUSED;
    } else {
        int rc = c.elem == 8 ? run_case_f64(&c, &h, err, sizeof err)
                             : run_case_f32(&c, &h, err, sizeof err);
        if (rc == -1) result = rf_write_message(folder, "error.txt", err) ? BROKEN : REFUSED;
        else if (rc == -2) { fprintf(stderr, "refopt_port: %s\n", err); result = BROKEN; }
    }
    rf_free_case(&c);
    return result;
}

int main(int argc, char **argv) {
    long counts[4] = {0, 0, 0, 0};
    if (argc == 2 && strcmp(argv[1], "--case")) {
        char path[4352], id[256];
        snprintf(path, sizeof path, "%s/index.txt", argv[1]);
        FILE *f = fopen(path, "r");
        long n;
        if (!f || fscanf(f, "%ld", &n) != 1 || n < 0 || n > 1000000) {
            fprintf(stderr, "refopt_port: %s: not an index written by refopt verify "
                    "--write-inputs\n", path);
            if (f) fclose(f);
            return 2;
        }
        for (long k = 0; k < n; k++) {
            if (fscanf(f, "%255s", id) != 1) { counts[BROKEN]++; break; }
            char folder[4608];
            snprintf(folder, sizeof folder, "%s/%s", argv[1], id);
            counts[run_folder(folder)]++;
        }
        fclose(f);
    } else if (argc >= 3 && !strcmp(argv[1], "--case")) {
        for (int k = 2; k < argc; k++) counts[run_folder(argv[k])]++;
    } else {
        fprintf(stderr, "usage: refopt_port DIR | refopt_port --case FOLDER...\n");
        return 2;
    }
    printf("%ld run, %ld refused, %ld unsupported, %ld unreadable\n", counts[RAN],
           counts[REFUSED], counts[NOT_SUPPORTED], counts[BROKEN]);
    return counts[BROKEN] ? 1 : 0;
}
