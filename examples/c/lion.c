/* lion.c: a C port of Lion (Chen et al. 2023, arXiv 2302.06675) for refopt's file mode, judged
 * against the golden cases of a *user* rule: examples/sweeps/lion.py (docs/extending.md).
 *
 *   cd examples/sweeps && refopt golden build --rule lion:Lion --out /tmp/lion-suite
 *   refopt verify lion:Lion --suite /tmp/lion-suite --write-inputs /tmp/lion-cases
 *   make -C examples/c lion_port && examples/c/lion_port /tmp/lion-cases
 *   refopt compare lion:Lion /tmp/lion-cases --suite /tmp/lion-suite
 *
 * Written from the paper's equations (weight decay decoupled and applied first):
 *   c_t = beta1 m_{t-1} + (1 - beta1) g_t
 *   w_t = (1 - eta_t lambda) w_{t-1} - eta_t sign(c_t)
 *   m_t = beta2 m_{t-1} + (1 - beta2) g_t
 * Every tensor operation in the tensor's dtype; the per-step scalars in double, rounded once.
 * -DMISTAKE_M_FIRST plants a slip for the tests: m_t updated before the sign is taken. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refopt_io.h"

typedef struct { double lr, b1, b2, wd; } lion_hp;

enum { OK, INVALID, UNSUPPORTED };

/* hyperparameter name -> x; check 0: finite >= 0, 1: in [0, 1). */
static int real(const rf_case *c, const char *name, int check, double *x, char *msg,
                size_t len) {
    const rf_hyper *h = rf_hyper_get(c, name);
    if (!h) { snprintf(msg, len, "hyperparameter %s is missing; this port reads it", name);
              return UNSUPPORTED; }
    if (strcmp(h->type, "f64")) { snprintf(msg, len, "%s must be a real number", name);
                                  return INVALID; }
    *x = strtod(h->value, NULL);
    int ok = check == 0 ? isfinite(*x) && *x >= 0 : *x >= 0 && *x < 1;
    if (!ok) { snprintf(msg, len, "%s %s, got %s", name,
                        check == 0 ? "must be finite and >= 0" : "must be in [0, 1)", h->value);
               return INVALID; }
    return OK;
}

static int read_hyper(const rf_case *c, lion_hp *h, char *msg, size_t len) {
    static const char *const known[] = {"lr", "betas.0", "betas.1", "weight_decay",
                                        "nonfinite", NULL};
    for (int k = 0; k < c->n_hyper; k++) {
        int found = 0;
        for (int j = 0; known[j]; j++) found |= !strcmp(known[j], c->hyper[k].name);
        if (!found) { snprintf(msg, len, "this port has no hyperparameter %s",
                               c->hyper[k].name); return UNSUPPORTED; }
    }
    int s;
    if ((s = real(c, "lr", 0, &h->lr, msg, len))) return s;
    if ((s = real(c, "betas.0", 1, &h->b1, msg, len))) return s;
    if ((s = real(c, "betas.1", 1, &h->b2, msg, len))) return s;
    if ((s = real(c, "weight_decay", 0, &h->wd, msg, len))) return s;
    for (long k = 0; k < c->n_steps; k++)   /* the scheduled lr of every step, as lr itself */
        if (!(isfinite(c->lr[k]) && c->lr[k] >= 0)) {
            snprintf(msg, len, "lr must be finite and >= 0 at every step");
            return INVALID;
        }
    return OK;
}

/* One dtype: REAL is float or double (the file is its own template, as port.c's rules). */
#define DEFINE_RUN(REAL, SUFFIX)                                                              \
static int run_##SUFFIX(const rf_case *c, const lion_hp *h) {                                \
    long nt = c->n_tensors, nr = c->n_record, rec = 0;                                       \
    REAL **w = calloc((size_t)nt, sizeof *w), **m = calloc((size_t)nt, sizeof *m);           \
    REAL **hw = calloc((size_t)nt, sizeof *hw), **hm = calloc((size_t)nt, sizeof *hm);       \
    int rc = -1;                                                                             \
    if (!w || !m || !hw || !hm) goto done;                                                   \
    for (long i = 0; i < nt; i++) {                                                          \
        size_t n = (size_t)c->numel[i], nh = (size_t)nr * n;                                 \
        w[i] = malloc((n ? n : 1) * sizeof(REAL));                                           \
        m[i] = calloc(n ? n : 1, sizeof(REAL));                                              \
        hw[i] = malloc((nh ? nh : 1) * sizeof(REAL));                                        \
        hm[i] = malloc((nh ? nh : 1) * sizeof(REAL));                                        \
        if (!w[i] || !m[i] || !hw[i] || !hm[i]) goto done;                                   \
        memcpy(w[i], c->param[i], n * sizeof(REAL));                                         \
    }                                                                                        \
    const REAL b1 = (REAL)h->b1, omb1 = (REAL)(1.0 - h->b1);                                 \
    const REAL b2 = (REAL)h->b2, omb2 = (REAL)(1.0 - h->b2);                                 \
    for (long t = 0; t <= c->n_steps; t++) {                                                 \
        if (t > 0) {                                                                         \
            const REAL lr = (REAL)c->lr[t - 1], decay = (REAL)(1.0 - c->lr[t - 1] * h->wd);  \
            for (long i = 0; i < nt; i++) {                                                  \
                const REAL *g = (const REAL *)c->grad[i] + (size_t)(t - 1) * c->numel[i];    \
                for (long j = 0; j < c->numel[i]; j++) {                                     \
                    REAL m_next = b2 * m[i][j] + omb2 * g[j];                                \
                    REAL cj = MISTAKE_M_FIRST_PICK(b1 * m[i][j], b1 * m_next) + omb1 * g[j];  \
                    REAL sign = (REAL)((cj > 0) - (cj < 0));                                 \
                    w[i][j] = w[i][j] * decay - lr * sign;                                   \
                    m[i][j] = m_next;                                                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        if (rec < nr && c->record[rec] == t) {                                               \
            for (long i = 0; i < nt; i++) {                                                  \
                size_t n = (size_t)c->numel[i];                                              \
                memcpy(hw[i] + (size_t)rec * n, w[i], n * sizeof(REAL));                     \
                memcpy(hm[i] + (size_t)rec * n, m[i], n * sizeof(REAL));                     \
            }                                                                                \
            rec++;                                                                           \
        }                                                                                    \
    }                                                                                        \
    rc = 0;                                                                                  \
    for (long i = 0; i < nt && !rc; i++) {                                                   \
        char name[64];                                                                       \
        snprintf(name, sizeof name, "exp_avg.%ld.bin", i);                                   \
        rc = rf_write_array(c->folder, name, hm[i], (size_t)nr * c->numel[i], sizeof(REAL)); \
    }                                                                                        \
    for (long i = 0; i < nt && !rc; i++) {  /* the params last: a folder with them is done */ \
        char name[64];                                                                       \
        snprintf(name, sizeof name, "param.%ld.bin", i);                                     \
        rc = rf_write_array(c->folder, name, hw[i], (size_t)nr * c->numel[i], sizeof(REAL)); \
    }                                                                                        \
done:                                                                                        \
    for (long i = 0; i < nt; i++) {                                                          \
        if (w) free(w[i]);                                                                   \
        if (m) free(m[i]);                                                                   \
        if (hw) free(hw[i]);                                                                 \
        if (hm) free(hm[i]);                                                                 \
    }                                                                                        \
    free(w); free(m); free(hw); free(hm);                                                    \
    return rc;                                                                               \
}

#ifdef MISTAKE_M_FIRST
#define MISTAKE_M_FIRST_PICK(right, wrong) (wrong)
#else
#define MISTAKE_M_FIRST_PICK(right, wrong) (right)
#endif

DEFINE_RUN(double, f64)
DEFINE_RUN(float, f32)

/* 0 ran, 1 refused, 2 unsupported, 3 unreadable or unwritable. */
static int run_folder(const char *folder) {
    rf_case c;
    char err[512] = "", msg[512] = "";
    if (rf_read_case(folder, &c, err, sizeof err)) {
        fprintf(stderr, "lion_port: %s\n", err);
        rf_free_case(&c);
        return 3;
    }
    rf_clear_outputs(folder, c.n_tensors);
    lion_hp h;
    int status = read_hyper(&c, &h, msg, sizeof msg), result = 0;
    if (status == UNSUPPORTED)
        result = rf_write_message(folder, "unsupported.txt", msg) ? 3 : 2;
    else if (status == INVALID)
        result = rf_write_message(folder, "error.txt", msg) ? 3 : 1;
    else if ((c.elem == 8 ? run_f64(&c, &h) : run_f32(&c, &h)) != 0) {
        fprintf(stderr, "lion_port: %s: cannot write the outputs\n", folder);
        result = 3;
    }
    rf_free_case(&c);
    return result;
}

int main(int argc, char **argv) {
    long counts[4] = {0, 0, 0, 0};
    char path[4352], id[256];
    if (argc != 2) {
        fprintf(stderr, "usage: lion_port DIR (a folder written by refopt verify "
                        "--write-inputs)\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/index.txt", argv[1]);
    FILE *f = fopen(path, "r");
    long n;
    if (!f || fscanf(f, "%ld", &n) != 1 || n < 0 || n > 1000000) {
        fprintf(stderr, "lion_port: %s: not an index written by refopt verify --write-inputs\n",
                path);
        if (f) fclose(f);
        return 2;
    }
    for (long k = 0; k < n; k++) {
        if (fscanf(f, "%255s", id) != 1) { counts[3]++; break; }
        char folder[4608];
        snprintf(folder, sizeof folder, "%s/%s", argv[1], id);
        counts[run_folder(folder)]++;
    }
    fclose(f);
    printf("%ld run, %ld refused, %ld unsupported, %ld unreadable\n", counts[0], counts[1],
           counts[2], counts[3]);
    return counts[3] ? 1 : 0;
}
