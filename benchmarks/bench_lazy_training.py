"""Lazy training at finite width: GD of an NTKMLP vs the closed form of its linearisation.

For widths 256 / 1024 / 4096 (depth 2, ReLU, n = 40 training points, several seeds) an
``NTKMLP`` is trained by full-batch gradient descent on 0.5*mse with
eta * lambda_max / (n k) = 0.3 (lambda_max of the analytic NTK on the training set, one eta
for all widths), and compared at step t with the closed-form trajectory of the *same* network's
linearisation (``sklearn_ntk.training.linearized_trajectory``, discrete-GD filter, the
network's own f0):

* err  = ||(f_t - f_0)_GD - (f_t - f_0)_lin||_2 / ||(f_t - f_0)_lin||_2 on 20 test points,
* drift = ||Theta_t - Theta_0||_F / ||Theta_0||_F of the empirical NTK on the training set.

Both should fall like width^(-1/2); the fitted exponents are printed.

Run: ``PYTHONPATH=. python benchmarks/bench_lazy_training.py [--seeds 3] [--steps 100]``
"""

import argparse
import time

import numpy as np
import torch

from sklearn_ntk.kernels import NTKKernel
from sklearn_ntk.nn import NTKMLP
from sklearn_ntk.torch_ntk import empirical_ntk
from sklearn_ntk.training import gradient_descent, linearized_trajectory, relative_ntk_change


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--ratio", type=float, default=0.3, help="eta * lambda_max / (n k)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    n, d, m = args.n, args.d, 20
    X = rng.normal(size=(n, d))
    Xt = rng.normal(size=(m, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = np.sin(2 * X @ w) + 0.1 * rng.normal(size=n)
    lam_max = np.linalg.eigvalsh(NTKKernel(depth=2, activation="relu")(X))[-1]
    eta = args.ratio * n / lam_max
    T = args.steps
    print(f"depth 2 ReLU NTKMLP, n={n}, d={d}, {m} test points, float64, t={T} steps, "
          f"eta={eta:.4g} (eta*lam_max/n={args.ratio}), seeds={args.seeds}")
    print(f"{'width':>6} {'seed':>4} {'rel err f_t-f_0':>16} {'NTK drift':>10} "
          f"{'train loss GD':>14} {'lin':>10} {'time [s]':>9}")
    errs = np.zeros((len(args.widths), args.seeds))
    drifts = np.zeros_like(errs)
    for a, width in enumerate(args.widths):
        for s in range(args.seeds):
            t0 = time.perf_counter()
            net = NTKMLP(d, 2, width, "relu", seed=1000 * s + 7, dtype=torch.float64)
            kernels = []

            def cb(t, model, kernels=kernels):
                kernels.append(empirical_ntk(model, X, dtype=torch.float64))

            gd = gradient_descent(net, X, y, learning_rate=eta, steps=[0, T], X_test=Xt,
                                  callback=cb)
            lin = linearized_trajectory(net, X, y, Xt, learning_rate=eta, steps=[0, T])
            d_gd = gd.test_predictions[-1] - gd.test_predictions[0]
            d_lin = lin["test_predictions"][-1] - lin["test_predictions"][0]
            errs[a, s] = np.linalg.norm(d_gd - d_lin) / np.linalg.norm(d_lin)
            drifts[a, s] = relative_ntk_change(kernels[-1], kernels[0])
            print(f"{width:>6} {s:>4} {errs[a, s]:>16.4f} {drifts[a, s]:>10.4f} "
                  f"{gd.train_loss[-1]:>14.4g} {lin['train_loss'][-1]:>10.4g} "
                  f"{time.perf_counter() - t0:>9.1f}", flush=True)
    print()
    print(f"{'width':>6} {'mean err':>10} {'max err':>10} {'mean drift':>11} {'max drift':>10}")
    for a, width in enumerate(args.widths):
        print(f"{width:>6} {errs[a].mean():>10.4f} {errs[a].max():>10.4f} "
              f"{drifts[a].mean():>11.4f} {drifts[a].max():>10.4f}")
    lw = np.log(args.widths)
    p_err = np.polyfit(lw, np.log(errs.mean(1)), 1)[0]
    p_drift = np.polyfit(lw, np.log(drifts.mean(1)), 1)[0]
    print(f"fitted exponent (mean over seeds): err ~ width^{p_err:.3f}, "
          f"drift ~ width^{p_drift:.3f}")


if __name__ == "__main__":
    main()
