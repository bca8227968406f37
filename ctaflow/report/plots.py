"""Report figures as PNG bytes (matplotlib, Agg); inputs are report records, not the store."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(5.0, 3.6), dpi=110)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def parity_plot(parity: dict[str, list], title: str) -> bytes:
    """Predicted vs reference energy per atom (eV/atom, left) and force components (eV/Å,
    right) of the test set, one colour per composition with its RMSE, and the y = x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.8), dpi=110)
    panels = (
        (
            "energy",
            "energy_ref_ev_per_atom",
            "energy_pred_ev_per_atom",
            "eV/atom",
            1000,
            "meV/atom",
        ),
        ("force", "force_ref_ev_per_a", "force_pred_ev_per_a", "eV/Å", 1000, "meV/Å"),
    )
    for ax, (name, ref_key, pred_key, unit, scale, err_unit) in zip(axes, panels, strict=True):
        ref, pred = np.asarray(parity[ref_key]), np.asarray(parity[pred_key])
        comps = np.asarray(parity.get(f"{name}_composition") or ["test set"] * len(ref))
        if len(ref):
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            pad = 0.05 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1)
        for k, comp in enumerate(sorted(set(comps.tolist()))):
            sel = comps == comp
            err = scale * float(np.sqrt(np.mean((ref[sel] - pred[sel]) ** 2)))
            ax.scatter(
                ref[sel],
                pred[sel],
                s=6,
                alpha=0.6,
                color=f"C{k}",
                label=f"{comp}: RMSE {err:.3g} {err_unit}",
            )
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"MLFF {name} ({unit})")
        if len(ref):
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return _png(plt, fig)


def msd_plot(curves: list[dict[str, Any]], title: str) -> bytes:
    """Tracer MSD (Å²) against time (ps), one line per temperature / species / site class."""
    plt, fig, ax = _figure()
    for curve in curves:
        t = np.asarray(curve["time_ps"])
        msd = np.asarray(curve["msd_a2"])
        err = np.asarray(curve.get("msd_std_a2") or np.zeros_like(msd))
        ax.plot(t, msd, label=curve["label"])
        ax.fill_between(t, msd - err, msd + err, alpha=0.2)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def arrhenius_plot(rows: list[dict[str, Any]], title: str) -> bytes:
    """log10 D (cm²/s) with 1σ bars against 1000/T (K⁻¹), per species / site class."""
    plt, fig, ax = _figure()
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(f"{row['species']} {row['site_class'] or 'all'}", []).append(row)
    for label, group in sorted(groups.items()):
        group = sorted(group, key=lambda r: r["temperature_k"])
        x = [1000 / r["temperature_k"] for r in group]
        d = np.array([r["diffusivity_cm2_per_s"] for r in group])
        err = np.array([r["diffusivity_std_cm2_per_s"] for r in group])
        ax.errorbar(x, d, yerr=err, marker="o", capsize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("D* (cm²/s)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def checked_arrhenius_plot(rows: list[dict[str, Any]], title: str) -> bytes:
    """log10 D (cm²/s) against 1000/T (K⁻¹) per species / site class: points used in the
    Arrhenius fit filled with 1σ bars and the fitted line over their range, excluded points
    hollow with the names of the failed checks in the legend (``status``, ``failed_checks``,
    ``activation_energy_ev`` and ``prefactor_cm2_per_s`` of the records)."""
    plt, fig, ax = _figure()
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(f"{row['species']} {row['site_class'] or 'all'}", []).append(row)
    k_b = 8.617333262e-5
    for n, (label, group) in enumerate(sorted(groups.items())):
        colour = f"C{n % 10}"
        used = sorted((r for r in group if r.get("status") != "excluded"), key=_temperature)
        out = sorted((r for r in group if r.get("status") == "excluded"), key=_temperature)
        if used:
            ax.errorbar(
                [1000 / r["temperature_k"] for r in used],
                [r["diffusivity_cm2_per_s"] for r in used],
                yerr=[r["diffusivity_std_cm2_per_s"] for r in used],
                marker="o",
                ls="none",
                capsize=3,
                color=colour,
                label=f"{label}: used",
            )
            ea, d0 = used[0].get("activation_energy_ev"), used[0].get("prefactor_cm2_per_s")
            if ea is not None and d0 is not None:
                t = np.linspace(_temperature(used[0]), _temperature(used[-1]), 20)
                ax.plot(1000 / t, d0 * np.exp(-ea / (k_b * t)), color=colour, lw=1)
        positive = [r for r in out if r["diffusivity_cm2_per_s"] > 0]
        if positive:
            checks = sorted({c for r in positive for c in r.get("failed_checks") or []})
            ax.plot(
                [1000 / r["temperature_k"] for r in positive],
                [r["diffusivity_cm2_per_s"] for r in positive],
                marker="o",
                ls="none",
                mfc="none",
                color=colour,
                label=f"{label}: excluded ({', '.join(checks) or 'see table'})",
            )
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("D* (cm²/s)")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6)
    return _png(plt, fig)


def _temperature(row: dict[str, Any]) -> float:
    return row["temperature_k"]


def neb_plot(profiles: list[dict[str, Any]], title: str) -> bytes:
    """E − E_start (eV) along the band (Å): images as points, Hermite spline as a line."""
    plt, fig, ax = _figure()
    for n, prof in enumerate(profiles):
        colour = f"C{n % 10}"
        ax.plot(prof["spline_r_a"], prof["spline_energy_ev"], color=colour, lw=1.2)
        ax.plot(prof["r_a"], prof["energy_ev"], "o", color=colour, ms=4, label=prof["label"])
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel("reaction coordinate (Å)")
    ax.set_ylabel("E − E(start) (eV)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def delta_e_plot(rows: list[dict[str, Any]], title: str) -> bytes:
    """ΔE (meV/atom) against the substituted fraction x: mean ± standard error, and every
    included sample as a small dot. A composition without a usable sample is a gap: a dotted
    vertical line with the reason at the bottom of the axes, never a point on the ΔE scale."""
    plt, fig, ax = _figure()
    drawn = False
    for n, (engine, group) in enumerate(_by(rows, "engine").items()):
        colour = f"C{n % 10}"
        group = sorted(group, key=lambda r: r["x"] or 0.0)
        done = [r for r in group if r["n_samples"] > 0]
        if done:
            x = [r["x"] or 0.0 for r in done]
            y = [r["delta_e_amorphous_minus_crystalline_mev_per_atom"] for r in done]
            err = [r["delta_e_stderr_mev_per_atom"] or 0.0 for r in done]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=colour, label=engine)
            drawn = True
        for r in done:
            dots = [s["delta_e_mev_per_atom"] for s in r["samples"] if s["status"] == "ok"]
            ax.plot([r["x"] or 0.0] * len(dots), dots, ".", color=colour, alpha=0.4)
        for r in group:
            if r["n_samples"] == 0:
                xr = r["x"] or 0.0
                ax.axvline(xr, color=colour, ls=":", lw=1.0)
                ax.annotate(
                    f"{r['formula']}: no usable sample (0 of {r.get('n_requested')})",
                    xy=(xr, 0.03),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    fontsize=6,
                    color=colour,
                    ha="right",
                    va="bottom",
                )
    if drawn:
        ax.axhline(0.0, color="0.7", lw=0.8)
        ax.legend(fontsize=7)
        ax.set_ylabel("ΔE (meV/atom)")
    else:
        ax.set_yticks([])
        ax.set_ylabel("ΔE (meV/atom): no usable sample")
    xs = [r["x"] or 0.0 for r in rows]
    if xs:
        ax.set_xlim(min(xs) - 0.1, max(xs) + 0.1)
    substitution = next((r["substitution"] for r in rows if r.get("substitution")), None)
    ax.set_xlabel(f"x ({substitution})" if substitution else "x")
    ax.set_title(title, fontsize=9)
    return _png(plt, fig)


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row.get(key)), []).append(row)
    return groups


def gamma_bar_plot(rows: list[dict[str, Any]], title: str) -> bytes:
    """γ (J/m²) as bars, grouped by metal, one bar per phase (mean over samples, with the
    individual samples as points and the largest reference uncertainty as an error bar); a bar
    over a flagged sample is drawn open and hatched."""
    plt, fig, ax = _figure()
    metals = sorted({r["metal"] for r in rows})
    phases = ("crystalline", "amorphous")
    width = 0.38
    seen: set[str] = set()
    for k, phase in enumerate(phases):
        for i, metal in enumerate(metals):
            group = [r for r in rows if r["phase"] == phase and r["metal"] == metal]
            values = [r["gamma_j_per_m2"] for r in group]
            if not values:
                continue
            x = i + (k - 0.5) * width
            flagged = any(r.get("status") == "flagged" for r in group)
            errors = [r.get("gamma_uncertainty_j_per_m2") for r in group]
            errors = [e for e in errors if e is not None]
            label = phase + (" (flagged)" if flagged else "")
            if label in seen:  # one legend entry per phase and verdict
                label = None
            else:
                seen.add(label)
            ax.bar(
                x,
                np.mean(values),
                width,
                color="none" if flagged else f"C{k}",
                edgecolor=f"C{k}",
                hatch="//" if flagged else None,
                yerr=max(errors) if errors else None,
                capsize=3,
                label=label,
            )
            if len(values) > 1:
                ax.plot([x] * len(values), values, "k.", ms=4)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xticks(range(len(metals)), [f"{m} metal" for m in metals])
    ax.set_ylabel("γ (J/m²)")
    ax.set_title(title, fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return _png(plt, fig)


def exchange_plot(row: dict[str, Any], title: str) -> bytes:
    """Li on former Na sites of the Na-rich block per site class (left axis) and the framework's
    mean displacement (Å, right axis) against time (fs)."""
    plt, fig, ax = _figure()
    t = np.asarray(row["times_fs"])
    for site_class, counts in sorted(row["li_on_sites"].items()):
        if site_class != "none":
            ax.step(t, counts, where="post", label=f"Li on former {site_class} Na sites")
    ax.set_xlabel("time (fs)")
    ax.set_ylabel("number of Li")
    right = ax.twinx()
    right.plot(t, row["framework_mean_displacement_a"], color="0.4", ls="--", label="framework")
    right.set_ylabel("framework mean displacement (Å)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return _png(plt, fig)


def active_learning_plot(rows: list[dict[str, Any]], title: str) -> bytes:
    """Per exploration: fractions of frames below, inside and above the trust window (stacked
    bars, left axis) and member 0's test-set force RMSE (meV/Å, right axis)."""
    plt, fig, ax = _figure()
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for key, label, colour in (
        ("n_accurate", "below window", "C2"),
        ("n_candidate", "in window", "C1"),
        ("n_failed", "above window", "C3"),
    ):
        share = np.array([r[key] / r["n_frames"] for r in rows])
        ax.bar(x, share, 0.6, bottom=bottom, color=colour, label=label)
        bottom += share
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of explored frames")
    ax.set_xticks(x, [f"{r['iteration']}\n{r['n_train']} train" for r in rows])
    ax.set_xlabel("iteration (training frames)")
    right = ax.twinx()
    right.plot(x, [r["test_rmse_force_mev_per_a"] for r in rows], "ko-", label="test RMSE F")
    right.set_ylabel("test force RMSE (meV/Å)")
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(handles, labels, fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=9)
    return _png(plt, fig)
