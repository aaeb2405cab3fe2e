/* refopt_io.c: see refopt_io.h.  Every read is bounded: counts are checked against limits
 * before anything is allocated, and each .bin file must hold exactly the expected bytes. */
#define _POSIX_C_SOURCE 200809L
#include "refopt_io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int host_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void swap_bytes(void *data, size_t count, size_t elem) {
    unsigned char *p = data;
    for (size_t k = 0; k < count; k++, p += elem)
        for (size_t a = 0, b = elem - 1; a < b; a++, b--) {
            unsigned char t = p[a]; p[a] = p[b]; p[b] = t;
        }
}

static FILE *open_in(const char *folder, const char *name, char *err, size_t n) {
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail(err, n, "%s: cannot open: %s", path, strerror(errno));
    return f;
}

/* Read one whitespace-separated token into buf (at most cap-1 chars); 0 or -1. */
static int token(FILE *f, char *buf, size_t cap) {
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%%zus", cap - 1);
    return fscanf(f, fmt, buf) == 1 ? 0 : -1;
}

static int key_long(FILE *f, const char *key, long *out, long lo, long hi, char *err, size_t n) {
    char k[64];
    if (token(f, k, sizeof k) || strcmp(k, key) || fscanf(f, "%ld", out) != 1)
        return fail(err, n, "case.txt: expected '%s <integer>'", key);
    if (*out < lo || *out > hi)
        return fail(err, n, "case.txt: %s = %ld is outside [%ld, %ld]", key, *out, lo, hi);
    return 0;
}

static int key_str(FILE *f, const char *key, char *out, size_t cap, char *err, size_t n) {
    char k[64];
    if (token(f, k, sizeof k) || strcmp(k, key) || token(f, out, cap))
        return fail(err, n, "case.txt: expected '%s <word>'", key);
    return 0;
}

static int read_bin(const char *folder, const char *name, void *out, size_t count, size_t elem,
                    char *err, size_t n) {
    FILE *f = open_in(folder, name, err, n);
    if (!f) return -1;
    size_t got = count ? fread(out, elem, count, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != count || extra)
        return fail(err, n, "%s/%s: expected exactly %zu values of %zu bytes", folder, name,
                    count, elem);
    if (!host_little_endian()) swap_bytes(out, count, elem);
    return 0;
}

int rf_read_case(const char *folder, rf_case *c, char *err, size_t n) {
    memset(c, 0, sizeof *c);
    snprintf(c->folder, sizeof c->folder, "%s", folder);
    char word[256];
    long version_ok = 0;
    FILE *f = open_in(folder, "case.txt", err, n);
    if (!f) return -1;
    if (key_str(f, "format", word, sizeof word, err, n) || strcmp(word, "refopt-port-inputs"))
        { fclose(f); return fail(err, n, "case.txt: not a refopt-port-inputs case"); }
    if (key_str(f, "format_version", word, sizeof word, err, n)) { fclose(f); return -1; }
    version_ok = word[0] == '2' && word[1] == '.';
    if (!version_ok) { fclose(f); return fail(err, n, "case.txt: format_version %s, this "
                                              "reader knows 2.x", word); }
    if (key_str(f, "case_id", c->case_id, sizeof c->case_id, err, n)
        || key_str(f, "rule", c->rule, sizeof c->rule, err, n)
        || key_str(f, "dtype", c->dtype, sizeof c->dtype, err, n)
        || key_long(f, "n_steps", &c->n_steps, 0, RF_MAX_STEPS, err, n)
        || key_long(f, "n_tensors", &c->n_tensors, 0, RF_MAX_TENSORS, err, n)
        || key_long(f, "n_record", &c->n_record, 0, c->n_steps + 1, err, n)) {
        fclose(f); return -1;
    }
    if (!strcmp(c->dtype, "float64")) c->elem = 8;
    else if (!strcmp(c->dtype, "float32")) c->elem = 4;
    else { fclose(f); return fail(err, n, "case.txt: dtype %s is not float32 or float64",
                                  c->dtype); }
    long count;
    c->record = calloc((size_t)c->n_record + 1, sizeof *c->record);
    c->lr = calloc((size_t)c->n_steps + 1, sizeof *c->lr);
    if (!c->record || !c->lr) { fclose(f); return fail(err, n, "out of memory"); }
    if (key_long(f, "record_steps", &count, c->n_record, c->n_record, err, n)) {
        fclose(f); return -1;
    }
    for (long k = 0; k < c->n_record; k++)
        if (fscanf(f, "%ld", &c->record[k]) != 1 || c->record[k] < 0
            || c->record[k] > c->n_steps || (k && c->record[k] <= c->record[k - 1])) {
            fclose(f); return fail(err, n, "case.txt: record_steps entry %ld is not an "
                                   "increasing step in [0, n_steps]", k);
        }
    long sched;
    if (key_long(f, "lr_schedule", &sched, 0, 1, err, n)
        || key_long(f, "lr_per_step", &count, c->n_steps, c->n_steps, err, n)) {
        fclose(f); return -1;
    }
    c->lr_schedule = (int)sched;
    for (long k = 0; k < c->n_steps; k++) {
        if (token(f, word, sizeof word)) { fclose(f); return fail(err, n, "case.txt: "
                                                                   "lr_per_step too short"); }
        c->lr[k] = strtod(word, NULL);      /* hex floats, inf and nan included */
    }
    fclose(f);

    f = open_in(folder, "hyper.txt", err, n);
    if (!f) return -1;
    char text[256];
    while (c->n_hyper < RF_MAX_HYPER) {
        rf_hyper *h = &c->hyper[c->n_hyper];
        if (token(f, h->name, sizeof h->name)) break;
        if (token(f, h->type, sizeof h->type) || token(f, h->value, sizeof h->value)
            || token(f, text, sizeof text)) {
            fclose(f); return fail(err, n, "hyper.txt: line '%s' has not 4 fields", h->name);
        }
        c->n_hyper++;
    }
    if (c->n_hyper == RF_MAX_HYPER && token(f, text, sizeof text) == 0) {
        fclose(f); return fail(err, n, "hyper.txt: more than %d lines", RF_MAX_HYPER);
    }
    fclose(f);

    f = open_in(folder, "shapes.txt", err, n);
    if (!f) return -1;
    size_t nt = (size_t)c->n_tensors + 1;
    c->numel = calloc(nt, sizeof *c->numel);
    c->ndim = calloc(nt, sizeof *c->ndim);
    c->dims = calloc(nt, sizeof *c->dims);
    c->param = calloc(nt, sizeof *c->param);
    c->grad = calloc(nt, sizeof *c->grad);
    if (!c->numel || !c->ndim || !c->dims || !c->param || !c->grad) {
        fclose(f); return fail(err, n, "out of memory");
    }
    for (long i = 0; i < c->n_tensors; i++) {
        long index, numel, nd, prod = 1;
        if (fscanf(f, "%ld %ld %ld", &index, &numel, &nd) != 3 || index != i || nd < 0
            || nd > RF_MAX_NDIM || numel < 0 || numel > (1L << 28)) {
            fclose(f); return fail(err, n, "shapes.txt: bad line for tensor %ld", i);
        }
        for (long d = 0; d < nd; d++) {
            if (fscanf(f, "%ld", &c->dims[i][d]) != 1 || c->dims[i][d] < 0
                || c->dims[i][d] > (1L << 28)) {
                fclose(f); return fail(err, n, "shapes.txt: bad dimension of tensor %ld", i);
            }
            prod = c->dims[i][d] ? (prod > (1L << 28) ? prod : prod * c->dims[i][d]) : 0;
        }
        if (prod != numel) { fclose(f); return fail(err, n, "shapes.txt: tensor %ld: numel "
                                                    "%ld is not the product of its shape",
                                                    i, numel); }
        c->numel[i] = numel;
        c->ndim[i] = (int)nd;
    }
    fclose(f);

    for (long i = 0; i < c->n_tensors; i++) {
        size_t count_p = (size_t)c->numel[i], count_g = count_p * (size_t)c->n_steps;
        if (c->n_steps && count_p > ((size_t)1 << 31) / (size_t)c->n_steps)
            return fail(err, n, "grad.%ld.bin: too large", i);
        c->param[i] = malloc(count_p * c->elem + 1);
        c->grad[i] = malloc(count_g * c->elem + 1);
        if (!c->param[i] || !c->grad[i]) return fail(err, n, "out of memory");
        char name[64];
        snprintf(name, sizeof name, "param.%ld.bin", i);
        if (read_bin(folder, name, c->param[i], count_p, c->elem, err, n)) return -1;
        snprintf(name, sizeof name, "grad.%ld.bin", i);
        if (read_bin(folder, name, c->grad[i], count_g, c->elem, err, n)) return -1;
    }
    return 0;
}

void rf_free_case(rf_case *c) {
    for (long i = 0; i < c->n_tensors; i++) {
        if (c->param) free(c->param[i]);
        if (c->grad) free(c->grad[i]);
    }
    free(c->param); free(c->grad); free(c->numel); free(c->ndim); free(c->dims);
    free(c->record); free(c->lr);
    memset(c, 0, sizeof *c);
}

const rf_hyper *rf_hyper_get(const rf_case *c, const char *name) {
    for (int k = 0; k < c->n_hyper; k++)
        if (!strcmp(c->hyper[k].name, name)) return &c->hyper[k];
    return NULL;
}

int rf_write_output(const char *folder, const char *file, const void *data, size_t bytes) {
    char dir[4352], path[4608], tmp[4608];
    snprintf(dir, sizeof dir, "%s/output", folder);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, file);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) { remove(tmp); return -1; }
    return 0;
}

int rf_write_array(const char *folder, const char *file, const void *data, size_t count,
                   size_t elem) {
    if (host_little_endian()) return rf_write_output(folder, file, data, count * elem);
    void *copy = malloc(count * elem + 1);
    if (!copy) return -1;
    memcpy(copy, data, count * elem);
    swap_bytes(copy, count, elem);
    int rc = rf_write_output(folder, file, copy, count * elem);
    free(copy);
    return rc;
}

int rf_write_message(const char *folder, const char *file, const char *message) {
    char line[1024];
    int len = snprintf(line, sizeof line, "%s\n", message);
    if (len < 0) return -1;
    if ((size_t)len >= sizeof line) len = (int)sizeof line - 1;
    return rf_write_output(folder, file, line, (size_t)len);
}

void rf_clear_outputs(const char *folder, long n_tensors) {
    static const char *fixed[] = {"error.txt", "unsupported.txt"};
    static const char *keys[] = {"param", "exp_avg", "exp_avg_sq", "mask", "alpha", "kept"};
    char path[4608];
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
        snprintf(path, sizeof path, "%s/output/%s", folder, fixed[k]);
        remove(path);
    }
    for (long i = 0; i < n_tensors; i++)
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            snprintf(path, sizeof path, "%s/output/%s.%ld.bin", folder, keys[k], i);
            remove(path);
        }
}
