"""A "foreign" AdamS port for refopt's file mode: it reads only the documented files (inputs.json
and the raw little-endian .bin arrays), never imports refopt, and writes output/param.<i>.bin.
It stands in for a port in C, Rust or Julia; see refopt/verify/PORTING.md.

    python foreign_adams.py DIR [--mistake m_t]

``--mistake m_t`` plants the ReaLLM-Forge mistake (denominator from the updated momentum).
"""
import json
import sys
from pathlib import Path

import numpy as np


def read(folder, meta, key):
    spec = meta["arrays"][key]
    raw = np.fromfile(folder / spec["file"], dtype=np.dtype(spec["dtype"]))
    return raw.reshape(spec["shape"])


def run_case(folder, mistake):
    meta = json.loads((folder / "inputs.json").read_text())
    h = meta["hyper"]
    lr0, eps, wd = (float(h[k]) for k in ("lr", "eps", "weight_decay"))   # "nan" -> nan
    b1, b2 = (float(b) for b in h["betas"])
    if not (0 <= b1 < 1 and 0 <= b2 < 1 and 0 <= lr0 < float("inf") and eps >= 0 and wd >= 0):
        # NaN fails every comparison, so it is refused here too; lr = inf has no step.
        (folder / "output.json").write_text(json.dumps({"error": f"invalid hyperparameters {h}"}))
        return
    dt = np.dtype(meta["dtype"]).type
    lrs = read(folder, meta, "lr")
    record = set(meta["record_steps"])
    out_dir = folder / "output"
    out_dir.mkdir(exist_ok=True)
    for tensor in meta["tensors"]:
        i = tensor["index"]
        p = read(folder, meta, f"param.{i}").copy()
        grads = read(folder, meta, f"grad.{i}")
        m = np.zeros_like(p)
        history = [p.copy()] if 0 in record else []
        for t in range(1, meta["n_steps"] + 1):
            g, lr = grads[t - 1], float(lrs[t - 1])
            c = dt(1 - b1 ** t) if h["bias_correction"] else dt(1)
            p = p * dt(1 - lr * wd)
            m_new = dt(b1) * m + dt(1 - b1) * g
            m_den = m_new if mistake == "m_t" else m
            nu = dt(b2) * (m_den / c) ** 2 + dt(1 - b2) * (g * g)
            with np.errstate(invalid="ignore", divide="ignore"):
                step = (m_new / c) / (np.sqrt(nu) + dt(eps))
            step = np.where((m_new == 0) & (nu == 0), dt(0), step)
            p = p - dt(lr) * step
            m = m_new
            if t in record:
                history.append(p.copy())
        np.stack(history).astype(p.dtype.newbyteorder("<")).tofile(out_dir / f"param.{i}.bin")


def main(argv):
    root = Path(argv[0])
    mistake = argv[2] if len(argv) > 2 and argv[1] == "--mistake" else None
    for inputs in sorted(root.glob("*/inputs.json")):
        if json.loads(inputs.read_text())["rule"] == "adams":
            run_case(inputs.parent, mistake)


if __name__ == "__main__":
    main(sys.argv[1:])
