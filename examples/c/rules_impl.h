/* rules_impl.h: the three rules for one tensor dtype.  port.c includes this file twice, with
 * REAL = double / SQRT = sqrt / FN(x) = x##_f64 and with REAL = float / SQRT = sqrtf /
 * FN(x) = x##_f32: every tensor operation is in the tensor's dtype, every per-step scalar is
 * computed in double and rounded once to REAL (refopt's dtype contract).
 *
 * Written from the equations of refopt/rules/{adamx,adams,alphaadam}.py and proofs/spec/.
 * Planted mistakes for the tests (compile with one -D):
 *   MISTAKE_EPS_INSIDE_SQRT     sqrt(v + eps) instead of sqrt(v) + eps (every rule)
 *   MISTAKE_ADAMS_M_T           AdamS: nu from the updated m_t instead of m_{t-1}
 *   MISTAKE_ALPHAADAM_MASK_M_T  AlphaAdam: mask from m_t (Cautious) from step 2 on
 *   MISTAKE_WD_AFTER_STEP       decoupled weight decay after the update instead of before */

/* 0/0 := 0 (reachable only with eps = 0); x/0 stays inf. */
static REAL FN(safe_div)(REAL num, REAL den) {
    return (num == 0 && den == 0) ? (REAL)0 : num / den;
}

static REAL FN(denominator)(REAL v, REAL div, REAL eps) {
#ifdef MISTAKE_EPS_INSIDE_SQRT
    (void)div;
    return SQRT(v + eps);
#else
    return SQRT(v) / div + eps;
#endif
}

/* AdamX's optional state rounding (state_dtype): float32 or bfloat16, back to REAL. */
static REAL FN(round_state)(REAL x, int state_dtype) {
    if (state_dtype == SD_F32) return (REAL)(float)x;
    if (state_dtype == SD_BF16) return (REAL)bf16_round((float)x);
    return x;
}

static void FN(adamx_tensor)(const hp *h, const sc64 *s, long n, REAL *p, const REAL *g_in,
                             REAL *m, REAL *v) {
    const REAL lr = (REAL)s->lr, decay = (REAL)s->decay, l2 = (REAL)s->l2;
    const REAL b1t = (REAL)s->beta1, omb1t = (REAL)s->one_minus_beta1;
    const REAL b2t = (REAL)s->beta2, omb2t = (REAL)s->one_minus_beta2, eps = (REAL)s->eps;
    for (long j = 0; j < n; j++) {
        REAL g = g_in[j], w = p[j];
        if (h->wd_l2) g = g + l2 * w;
#ifndef MISTAKE_WD_AFTER_STEP
        else w = w * decay;
#endif
        REAL mt = b1t * m[j] + omb1t * g;
        REAL vt = b2t * v[j] + omb2t * (g * g);
        mt = FN(round_state)(mt, h->state_dtype);
        vt = FN(round_state)(vt, h->state_dtype);
        w = w - lr * FN(safe_div)(mt, FN(denominator)(vt, (REAL)1, eps));
#ifdef MISTAKE_WD_AFTER_STEP
        if (!h->wd_l2) w = w * decay;
#endif
        p[j] = w; m[j] = mt; v[j] = vt;
    }
}

static void FN(adams_tensor)(const hp *h, const sc64 *s, long n, REAL *p, const REAL *g_in,
                             REAL *m) {
    (void)h;
    const REAL lr = (REAL)s->lr, decay = (REAL)s->decay, c = (REAL)s->bias_correction1;
    const REAL b1 = (REAL)s->beta1, omb1 = (REAL)s->one_minus_beta1;
    const REAL b2 = (REAL)s->beta2, omb2 = (REAL)s->one_minus_beta2, eps = (REAL)s->eps;
    for (long j = 0; j < n; j++) {
        REAL g = g_in[j], w = p[j];
#ifndef MISTAKE_WD_AFTER_STEP
        w = w * decay;
#endif
        REAL mt = b1 * m[j] + omb1 * g;
#ifdef MISTAKE_ADAMS_M_T
        REAL m_den = mt / c;          /* ReaLLM-Forge: the UPDATED momentum */
#else
        REAL m_den = m[j] / c;        /* the OLD momentum m_{t-1}, divided by c_t */
#endif
        REAL nu = b2 * (m_den * m_den) + omb2 * (g * g);
        REAL m_hat = mt / c;
        w = w - lr * FN(safe_div)(m_hat, FN(denominator)(nu, (REAL)1, eps));
#ifdef MISTAKE_WD_AFTER_STEP
        w = w * decay;
#endif
        p[j] = w; m[j] = mt;
    }
}

/* AlphaAdam: u and the mask first (alpha needs the whole tensor), then the update.
 * u: scratch of n values; mask_out: n bytes; returns alpha, *kept_out the mask's count. */
static double FN(alphaadam_tensor)(const hp *h, const sc64 *s, long t, long n, REAL *p,
                                   const REAL *g_in, REAL *m, REAL *v, REAL *u,
                                   unsigned char *mask_out, long *kept_out) {
    const REAL decay = (REAL)s->decay, step_size = (REAL)s->step_size;
    const REAL b1 = (REAL)s->beta1, omb1 = (REAL)s->one_minus_beta1;
    const REAL b2 = (REAL)s->beta2, omb2 = (REAL)s->one_minus_beta2;
    const REAL div = (REAL)s->denom_div, eps = (REAL)s->eps;
    /* No score (an all-ones mask): mask_source = ones, or the unmasked first step. */
    int no_score = h->mask_source == MS_ONES
                   || (h->mask_source == MS_M_PREV && t == 1 && h->first_step == FS_UNMASKED);
    long kept = 0;
    for (long j = 0; j < n; j++) {
        REAL g = g_in[j];
#ifndef MISTAKE_WD_AFTER_STEP
        p[j] = p[j] * decay;
#endif
        REAL m_prev = m[j];
        REAL mt = b1 * m[j] + omb1 * g;
        REAL vt = b2 * v[j] + omb2 * (g * g);
        REAL score = 0;
        if (!no_score) {
            if (h->mask_source == MS_M_T) score = mt * g;
            else if (t == 1 && h->first_step == FS_CAUTIOUS) score = mt * g;
#ifdef MISTAKE_ALPHAADAM_MASK_M_T
            else if (t > 1) score = mt * g;
#endif
            else score = m_prev * g;
        }
        int keep = no_score ? 1 : (h->strict ? score > 0 : score >= 0);
        mask_out[j] = (unsigned char)keep;
        kept += keep;
        u[j] = FN(safe_div)(mt, FN(denominator)(vt, div, eps));
        m[j] = mt; v[j] = vt;
    }
    double alpha;
    if (no_score && h->mask_source == MS_M_PREV) alpha = 1.0;   /* psi = 1 at t = 1 */
    else if (h->alpha_rule == AR_NORM) {
        double all = 0, in = 0;
        for (long j = 0; j < n; j++) {
            double x = (double)u[j];
            all += x * x;
            if (mask_out[j]) in += x * x;
        }
        alpha = in == 0 ? 1.0 : fmin(h->alpha_max, sqrt(all) / sqrt(in));
    } else alpha = alpha_for(h, kept, n);
    const REAL a = (REAL)alpha, gamma = (REAL)h->gamma, one = (REAL)1;
    for (long j = 0; j < n; j++) {
        REAL phi = mask_out[j] ? one : (REAL)0;
        REAL psi = h->alpha_rule == AR_SOFT ? phi / a + (one - phi) * a
                                            : a * phi + gamma * (one - phi);
        p[j] = p[j] - step_size * (psi * u[j]);
#ifdef MISTAKE_WD_AFTER_STEP
        p[j] = p[j] * decay;
#endif
    }
    *kept_out = kept;
    return alpha;
}

/* Run the case: every step, recording params (and state, AlphaAdam's mask/alpha/kept) at the
 * recorded steps, then write output/.  Returns 0, or -1 with a message in err (a refusal). */
static int FN(run_case)(const rf_case *c, const hp *h, char *err, size_t errlen) {
    long T = c->n_steps, nt = c->n_tensors, nr = c->n_record;
    int is_alpha = h->rule == RULE_ALPHAADAM, has_v = h->rule != RULE_ADAMS;
    long n_info = 0;
    for (long k = 0; k < nr; k++) n_info += c->record[k] != 0;
    REAL **p = calloc((size_t)nt + 1, sizeof *p), **m = calloc((size_t)nt + 1, sizeof *m);
    REAL **v = calloc((size_t)nt + 1, sizeof *v), **u = calloc((size_t)nt + 1, sizeof *u);
    REAL **hp_ = calloc((size_t)nt + 1, sizeof *hp_), **hm = calloc((size_t)nt + 1, sizeof *hm);
    REAL **hv = calloc((size_t)nt + 1, sizeof *hv);
    unsigned char **mask = calloc((size_t)nt + 1, sizeof *mask);
    unsigned char **hmask = calloc((size_t)nt + 1, sizeof *hmask);
    double **halpha = calloc((size_t)nt + 1, sizeof *halpha);
    int64_t **hkept = calloc((size_t)nt + 1, sizeof *hkept);
    int rc = -1;
    if (!p || !m || !v || !u || !hp_ || !hm || !hv || !mask || !hmask || !halpha || !hkept) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (long i = 0; i < nt; i++) {
        size_t ne = (size_t)c->numel[i] + 1, nh = (size_t)nr * (size_t)c->numel[i] + 1;
        p[i] = malloc(ne * sizeof(REAL)); m[i] = calloc(ne, sizeof(REAL));
        v[i] = calloc(ne, sizeof(REAL)); u[i] = calloc(ne, sizeof(REAL));
        hp_[i] = malloc(nh * sizeof(REAL)); hm[i] = malloc(nh * sizeof(REAL));
        hv[i] = malloc(nh * sizeof(REAL)); mask[i] = calloc(ne, 1);
        hmask[i] = calloc((size_t)n_info * (size_t)c->numel[i] + 1, 1);
        halpha[i] = calloc((size_t)n_info + 1, sizeof(double));
        hkept[i] = calloc((size_t)n_info + 1, sizeof(int64_t));
        if (!p[i] || !m[i] || !v[i] || !u[i] || !hp_[i] || !hm[i] || !hv[i] || !mask[i]
            || !hmask[i] || !halpha[i] || !hkept[i]) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        memcpy(p[i], c->param[i], (size_t)c->numel[i] * sizeof(REAL));
    }
    long t = 0, rec = 0, info_row = 0;
    for (long k = 0; k <= T; k++) {
        if (k > 0) {
            /* Non-finite gradients: refopt's nonfinite policy (raise / skip / propagate). */
            int finite = 1;
            long bad = -1;
            for (long i = 0; i < nt && finite; i++) {
                const REAL *g = (const REAL *)c->grad[i] + (size_t)(k - 1) * c->numel[i];
                for (long j = 0; j < c->numel[i]; j++)
                    if (!isfinite(g[j])) { finite = 0; bad = i; break; }
            }
            int skip = 0;
            if (!finite && h->nonfinite == NF_RAISE) {
                snprintf(err, errlen, "grads[%ld] contains NaN or inf at step %ld "
                         "(nonfinite='raise')", bad, k);
                goto done;
            }
            if (!finite && h->nonfinite == NF_SKIP) skip = 1;
            if (!skip) {
                t += 1;
                sc64 s;
                if (step_scalars(h, t, c->lr[k - 1], &s, c->elem, err, errlen)) goto done;
                for (long i = 0; i < nt; i++) {
                    const REAL *g = (const REAL *)c->grad[i] + (size_t)(k - 1) * c->numel[i];
                    long n = c->numel[i];
                    if (h->rule == RULE_ADAMX) FN(adamx_tensor)(h, &s, n, p[i], g, m[i], v[i]);
                    else if (h->rule == RULE_ADAMS) FN(adams_tensor)(h, &s, n, p[i], g, m[i]);
                    else {
                        long kept;
                        double alpha = FN(alphaadam_tensor)(h, &s, t, n, p[i], g, m[i], v[i],
                                                            u[i], mask[i], &kept);
                        halpha[i][info_row < n_info ? info_row : 0] = alpha;
                        hkept[i][info_row < n_info ? info_row : 0] = kept;
                    }
                }
            } else if (is_alpha) {
                /* A skipped step changes nothing: the extras of the last step stay. */
            }
        }
        if (rec < nr && c->record[rec] == k) {
            for (long i = 0; i < nt; i++) {
                size_t n = (size_t)c->numel[i], off = (size_t)rec * n;
                memcpy(hp_[i] + off, p[i], n * sizeof(REAL));
                memcpy(hm[i] + off, m[i], n * sizeof(REAL));
                memcpy(hv[i] + off, v[i], n * sizeof(REAL));
                if (is_alpha && k > 0) {
                    memcpy(hmask[i] + (size_t)info_row * n, mask[i], n);
                }
            }
            if (is_alpha && k > 0) {
                info_row++;
                if (info_row < n_info)
                    for (long i = 0; i < nt; i++) {   /* carry over for a skipped next step */
                        halpha[i][info_row] = halpha[i][info_row - 1];
                        hkept[i][info_row] = hkept[i][info_row - 1];
                    }
            }
            rec++;
        }
    }
    for (long i = 0; i < nt; i++) {
        char name[64];
        size_t n = (size_t)nr * (size_t)c->numel[i];
        snprintf(name, sizeof name, "exp_avg.%ld.bin", i);
        if (rf_write_array(c->folder, name, hm[i], n, sizeof(REAL))) goto io_error;
        if (has_v) {
            snprintf(name, sizeof name, "exp_avg_sq.%ld.bin", i);
            if (rf_write_array(c->folder, name, hv[i], n, sizeof(REAL))) goto io_error;
        }
        if (is_alpha) {
            snprintf(name, sizeof name, "mask.%ld.bin", i);
            if (rf_write_output(c->folder, name, hmask[i], (size_t)n_info * c->numel[i]))
                goto io_error;
            snprintf(name, sizeof name, "alpha.%ld.bin", i);
            if (rf_write_array(c->folder, name, halpha[i], (size_t)n_info, 8)) goto io_error;
            snprintf(name, sizeof name, "kept.%ld.bin", i);
            if (rf_write_array(c->folder, name, hkept[i], (size_t)n_info, 8)) goto io_error;
        }
    }
    for (long i = 0; i < nt; i++) {   /* the params last: a folder with them is complete */
        char name[64];
        snprintf(name, sizeof name, "param.%ld.bin", i);
        if (rf_write_array(c->folder, name, hp_[i], (size_t)nr * c->numel[i], sizeof(REAL)))
            goto io_error;
    }
    rc = 0;
    goto done;
io_error:
    snprintf(err, errlen, "IO: cannot write %.400s/output", c->folder);
    rc = -2;
done:
    for (long i = 0; i < nt; i++) {
        if (p) free(p[i]);
        if (m) free(m[i]);
        if (v) free(v[i]);
        if (u) free(u[i]);
        if (hp_) free(hp_[i]);
        if (hm) free(hm[i]);
        if (hv) free(hv[i]);
        if (mask) free(mask[i]);
        if (hmask) free(hmask[i]);
        if (halpha) free(halpha[i]);
        if (hkept) free(hkept[i]);
    }
    free(p); free(m); free(v); free(u); free(hp_); free(hm); free(hv); free(mask);
    free(hmask); free(halpha); free(hkept);
    return rc;
}
