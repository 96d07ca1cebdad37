"""Redraw docs/figures/cascade_schedule.png: beta_j(t) of the dSprites presets under the paper's
Algorithm 1 and under the official code's counting. Run from the repository root:
``python docs/figures/cascade_schedule.py``."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cascadevae.presets import get_preset  # noqa: E402


def main(path=os.path.join(os.path.dirname(__file__), "cascade_schedule.png")):
    configs = [get_preset("dsprites"), get_preset("dsprites-official")]
    m = configs[0].latent_dim
    fig, axes = plt.subplots(m, 2, figsize=(9, 5.6), sharex=True, dpi=100)
    for col, cfg in enumerate(configs):
        s = cfg.schedule()
        t = np.arange(0, cfg.iterations + 1, 250)
        betas = np.stack([s.betas(int(x)) for x in t])
        td = cfg.discrete_warmup
        for j in range(m):
            ax = axes[j, col]
            ax.axvspan(td / 1e3, cfg.iterations / 1e3, color="tab:orange", alpha=0.15, lw=0)
            ax.step(t / 1e3, betas[:, j], where="post", color="tab:blue", lw=1.6)
            tj = s.relief_iterations()[j]
            ax.plot([tj / 1e3], [cfg.beta_low], "o", color="tab:red", ms=4)
            ax.set_yscale("log")
            ax.set_ylim(cfg.beta_low / 2, cfg.beta_high * 2)
            ax.set_yticks([cfg.beta_low, cfg.beta_high])
            ax.set_yticklabels([f"{cfg.beta_low:g}", f"{cfg.beta_high:g}"], fontsize=7)
            ax.minorticks_off()
            ax.set_xticks(np.arange(0, cfg.iterations / 1e3 + 1, 20))
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(axis="x", lw=0.3, alpha=0.5)
            if col == 0:
                ax.set_ylabel(f"$\\beta_{j + 1}$", rotation=0, labelpad=12, fontsize=9)
        axes[0, col].set_title(
            f"{cfg.name}: variant='{cfg.schedule_variant}', $\\beta_l$={cfg.beta_low:g}, "
            f"$t_d$={td // 1000}k", fontsize=9)
        axes[-1, col].set_xlabel("update t (thousands, counted from 0)", fontsize=8)
    fig.suptitle("Per-dim KL weight $\\beta_j(t)$ on dSprites (r = 20k); red dot: dim relieved, "
                 "shaded: discrete step on", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    fig.savefig(path)
    print(path)


if __name__ == "__main__":
    main()
