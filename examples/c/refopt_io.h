/* refopt_io.h: read one case of refopt's file mode (the flat layout of refopt/verify/PORTING.md,
 * "Ports in other languages: the file mode") and write the port's outputs.  C99 + POSIX mkdir.
 *
 * A case folder holds case.txt, hyper.txt, shapes.txt and raw little-endian arrays
 * param.<i>.bin (the initial params) and grad.<i>.bin (every step's gradient, stacked).
 * The port writes output/param.<i>.bin (every recorded step, stacked), optionally
 * output/exp_avg.<i>.bin etc., or output/error.txt (a refusal) or output/unsupported.txt. */
#ifndef REFOPT_IO_H
#define REFOPT_IO_H

#include <stddef.h>
#include <stdint.h>

#define RF_MAX_HYPER 64
#define RF_MAX_NDIM 8
#define RF_MAX_TENSORS 4096
#define RF_MAX_STEPS 10000000L

typedef struct {
    char name[64];   /* e.g. "lr", "betas.0", "mask_source" */
    char type[8];    /* "f64", "bool", "str", "none" */
    char value[128]; /* the machine spelling: hex float, 0/1, the string, "-" */
} rf_hyper;

typedef struct {
    char folder[4096];
    char case_id[256], rule[32], dtype[16];
    size_t elem;                 /* 4 (float32) or 8 (float64) */
    long n_steps, n_tensors, n_record;
    long *record;                /* n_record recorded steps (0 = the initial params) */
    int lr_schedule;             /* 1 if lr differs between steps */
    double *lr;                  /* n_steps: the learning rate of step k = 1..n_steps at [k-1] */
    int n_hyper;
    rf_hyper hyper[RF_MAX_HYPER];
    long *numel;                 /* n_tensors */
    int *ndim;
    long (*dims)[RF_MAX_NDIM];
    void **param;                /* n_tensors arrays of numel values (host byte order) */
    void **grad;                 /* n_tensors arrays of n_steps * numel values */
} rf_case;

/* 0 on success; else -1 with a one-line message in err. */
int rf_read_case(const char *folder, rf_case *c, char *err, size_t errlen);
void rf_free_case(rf_case *c);

/* The hyperparameter called name, or NULL. */
const rf_hyper *rf_hyper_get(const rf_case *c, const char *name);

/* Write folder/output/<file> atomically (a temporary file, then rename). 0 or -1. */
int rf_write_output(const char *folder, const char *file, const void *data, size_t bytes);
/* Raw little-endian values of elem bytes each (converted from host order). */
int rf_write_array(const char *folder, const char *file, const void *data, size_t count,
                   size_t elem);
/* output/error.txt (a refusal) or output/unsupported.txt: one line. */
int rf_write_message(const char *folder, const char *file, const char *message);
/* Remove what an earlier run of the port left in output/ for this case. */
void rf_clear_outputs(const char *folder, long n_tensors);

#endif
