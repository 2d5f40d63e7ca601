"""Sample quality per family and loss at a stated CPU budget, beside PacGAN's and VEEGAN's tables.

For each dataset (ring8 and grid25 as in the PacGAN/VEEGAN 2-D experiments, and the 8x8 digits)
every family trains with its recipe (``RECIPES``: the defaults configs/*.yaml ship, found with the
sweeps docs/BENCHMARKS.md names), once per loss its main slot allows, for ``--seeds`` seeds. Each
model is one run fitted in a worker process of its own with the one training loop
(:func:`genai.train.launcher.train_local`, one torch thread: the budget, not the cluster, is
compared), then judged by ``genai.evaluate`` with the recipe's own sampler (``sampler: model``: a
DDPM recipe's whole ancestral chain, not evaluate's default DDIM): 2,500 samples against the test
split for the mixtures (modes captured, high-quality share, reverse KL), 500 for digits (FID,
KID, precision, recall in the domain feature network's standardised space). A seed also draws the
data's split, so each digits model's FID is divided by its own split's floor (as many real train
rows against that test split) in the FID / floor column. Every row states its budget: steps,
batch, width, and the CPU seconds its training took (at most 120).

The 32x32 colour sets (``shapes``, the generated shapes; ``photos``, patches of the two photos
scikit-learn ships) have a 600 s budget and are judged as ``genai evaluate`` judges them: 1,000
samples, its fast sampler (DDIM in 50 steps for a diffusion model), the seconds it took in a
column; a pixel Gaussian (the train split's mean and covariance) is the baseline row, and
``--conv`` adds each recipe with today's ``conv`` body beside its 32-64 px one (the photos
VAE recipe's body is ``conv`` already: its twin is the same run).

    .venv/bin/python bench/quality.py [--seeds 3] [--jobs 2] [--only ring8] [--families gan,vae]
        [--losses hinge,bce] [--main] [--set train.epochs=20 ...] [--conv] [--out q.md]
        [--store file:///tmp/q] [--split val]

``--split val`` judges against the validation split instead of the test split: what a probe of a
recipe's lever is chosen by, so the tables' test figures do not choose what they measure. A run
keeps one stored evaluation, so a probe in the tables' store replaces a run's test evaluation
(the next test table computes it again): give probes a store of their own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# RECIPES: (dataset, family) -> the shipped config that is its recipe (docs/BENCHMARKS.md says
# how each was found), the one `genai compare` starts each cell from; the benchmark changes only
# the seeds and the compared loss (--conv: the body too), and fits in one process (the budget, not
# the cluster, is compared) with the recipe's global batch and step count
from genai.compare.cells import RECIPES

PUBLISHED = {  # PacGAN (Lin et al. 2018) Table 1: modes / high-quality % / reverse KL
    "ring8": [
        ("GAN", 6.3, 98.2, 0.45),
        ("PacGAN2", 7.9, 95.6, 0.07),
        ("PacGAN3", 7.8, 97.7, 0.10),
        ("PacGAN4", 7.8, 95.9, 0.07),
    ],
    "grid25": [
        ("GAN", 17.3, 94.8, 0.70),
        ("PacGAN2", 23.8, 91.3, 0.13),
        ("PacGAN3", 24.6, 94.2, 0.06),
        ("PacGAN4", 24.8, 93.6, 0.04),
    ],
}
BUDGET_S = 120.0
# the colour datasets at 32x32 (issue 26): a budget of their own, and each model judged by the
# sampler and sample count `genai evaluate` uses on them (the figure and the command agree)
IMAGES_32 = ("shapes", "photos")
BUDGETS = {name: 600.0 for name in IMAGES_32}
IMAGE_SAMPLES, IMAGE_SAMPLER = 1000, "fast"  # DDIM in 50 steps at the recipe's eta

# family -> the loss slot compared and every loss it allows (wasserstein with its penalty)
LOSSES = {
    "gan": ("adversarial", ["minimax", "non_saturating", "hinge", "least_squares", "wasserstein"]),
    "vae": ("reconstruction", ["mse", "mae", "huber"]),
    "diffusion": ("noise", ["mse", "mae", "huber"]),
    "autoregressive": ("nll", ["cross_entropy"]),
}
DIGITS_LOSSES = {**LOSSES, "vae": ("reconstruction", ["bce", "mse", "mae", "huber"])}

# today's conv body beside a recipe's 32-64 px body (--conv): the same recipe, body conv (the
# photos VAE recipe is conv already, so its twin is the same run)
CONV_BODY = ("model.arch.body=conv",)
ROOT = Path(__file__).resolve().parents[1]
# the critic's constraint under a Wasserstein loss, where the recipe has no WGAN-GP penalty
WGAN_PENALTY = {"loss.gradient_penalty": {"name": "gradient_penalty", "weight": 1.0}}
# ... and the share of the recipe's epochs it then gets, where the recipe had no penalty at all:
# the penalty's second backward pass makes a critic step ~1.5x dearer (digits: 140-166 s of CPU
# at the recipe's 90 epochs against 91-109 s for the other losses), so the same budget buys 2/3
WGAN_EPOCHS = 2 / 3


def losses(dataset: str, family: str) -> tuple[str, list[str]]:
    """The compared slot and every loss it allows on this dataset."""
    return (DIGITS_LOSSES if dataset in ("digits", *IMAGES_32) else LOSSES)[family]


def recipe_loss(dataset: str, family: str) -> str:
    """The loss the recipe itself puts in the compared slot."""
    from genai.config import RunConfig
    from genai.configfile import load_config

    recipe = load_config(RunConfig, ROOT / RECIPES[dataset, family])
    return recipe.loss[losses(dataset, family)[0]].name


def config(
    dataset: str,
    family: str,
    loss: str,
    seed: int,
    run_id: str | None = None,
    sets: tuple[str, ...] = (),
):
    """The recipe's RunConfig with this seed and loss (and ``--set`` overrides), in one process."""
    from genai.config import RunConfig
    from genai.configfile import apply_overrides, load_config, read_yaml
    from genai.strict import ConfigError

    slot, path = losses(dataset, family)[0], ROOT / RECIPES[dataset, family]
    recipe = apply_overrides(read_yaml(path), sets)
    try:
        train = load_config(RunConfig, recipe).train  # N workers x batch B = 1 x batch N*B
    except ConfigError as err:  # a --set the recipe cannot take: say which recipe
        given = " ".join(sets)
        raise ConfigError(f"{RECIPES[dataset, family]} with --set {given}: {err}") from None
    cfg = load_config(
        RunConfig,
        recipe,
        data={
            "data.seed": seed,
            "train.seed": seed,
            f"loss.{slot}.name": loss,
            "train.num_workers": 1,
            "train.batch_size": train.batch_size * train.num_workers,
            "train.run_id": run_id,
        },
    )
    penalty = cfg.loss.get("gradient_penalty")
    if loss == "wasserstein" and (penalty is None or penalty.name != "gradient_penalty"):
        epochs = cfg.train.epochs
        if penalty is None:  # the penalty's second backward pass, in the same CPU budget
            epochs = max(1, round(epochs * WGAN_EPOCHS))
        tree = {**cfg.model_dump(mode="json"), **WGAN_PENALTY, "train.epochs": epochs}
        cfg = load_config(RunConfig, data=tree)
    if (cfg.data.source, cfg.model.family) != (dataset, family):
        raise ValueError(f"{RECIPES[dataset, family]} is not a {dataset} {family} recipe")
    return cfg


def fit_and_judge(
    store_uri: str,
    dataset: str,
    family: str,
    loss: str,
    seed: int,
    sets: tuple[str, ...] = (),
    split: str = "test",
) -> dict:
    """One model: fit in this process (one torch thread), evaluate against ``split``; CPU
    seconds of the fit."""
    import torch

    from genai.config import EvaluateConfig
    from genai.evaluate.evaluate import evaluate_run
    from genai.storage import ArtifactStore
    from genai.train.launcher import train_local

    torch.set_num_threads(1)
    # the run named by its content (as `genai train` names it): a --store used again with another
    # --set or an edited recipe trains anew instead of returning the stored run
    cfg = config(dataset, family, loss, seed, None, sets)
    store = ArtifactStore(store_uri)
    start = time.process_time()
    trained = train_local(cfg, store)
    cpu = time.process_time() - start
    run_id = trained.run_id
    if dataset in IMAGES_32:  # as `genai evaluate` samples them
        judged = EvaluateConfig(
            n_samples=IMAGE_SAMPLES, split=split, seed=seed, sampler=IMAGE_SAMPLER
        )
    else:  # the recipe's own sampler (a DDPM recipe's ancestral chain), as these were measured
        n = 500 if dataset == "digits" else 2500
        judged = EvaluateConfig(n_samples=n, split=split, seed=seed, sampler="model")
    begun = time.monotonic()
    ev = evaluate_run(store, run_id, judged)
    evaluate_s = time.monotonic() - begun
    steps = int(trained.metrics.get("steps", 0)) or None
    return {
        "dataset": dataset,
        "run_id": run_id,
        "family": family,
        "loss": loss,
        "seed": seed,
        "cpu_s": cpu,
        "steps": steps,
        "metrics": ev.metrics,
        "floors": ev.floors,
        "batch": cfg.train.batch_size,
        "epochs": cfg.train.epochs,
        "width": width_shown(cfg),
        "penalty": penalty_shown(cfg.loss.get("gradient_penalty")),
        "body": body_shown(cfg),
        "evaluate_s": evaluate_s,
        "sampler": ev.sampler,
        "split": split,
    }


def body_shown(cfg) -> str:
    if cfg.model.family == "autoregressive":
        return cfg.model.autoregressive.body
    return cfg.model.arch.body


def pixel_gaussian(store_uri: str, dataset: str, seed: int, split: str = "test") -> dict:
    """The baseline row: a Gaussian fitted to the train split's pixels (mean and full
    covariance), sampled as many times as a model and judged the same way."""
    import torch

    from genai.data.dataset import SplitReader
    from genai.data.prepare import prepare
    from genai.evaluate.judge import Judge
    from genai.storage import ArtifactStore

    store = ArtifactStore(store_uri)
    data = config(dataset, "vae", losses(dataset, "vae")[1][0], seed).data
    key = prepare(data, store).key
    x = torch.from_numpy(SplitReader(store, key, "train").read_all()[0]).flatten(1).double()
    mean, centred = x.mean(0), x - x.mean(0)
    cov = centred.T @ centred / (len(x) - 1) + 1e-6 * torch.eye(x.shape[1], dtype=x.dtype)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(IMAGE_SAMPLES, x.shape[1], generator=gen, dtype=x.dtype)
    fake = (mean + z @ torch.linalg.cholesky(cov).T).clamp(x.min(), x.max()).float()
    judge = Judge(store, key, reference=split)
    torch.manual_seed(seed)
    fake = fake.reshape(IMAGE_SAMPLES, *judge.manifest["shape"])
    return {"seed": seed, "metrics": judge.metrics(fake), "floors": judge.floors(IMAGE_SAMPLES)}


def width_shown(cfg) -> str:
    """The network's width as the budget column names it: the autoregressive body named too."""
    if cfg.model.family != "autoregressive":
        return str(cfg.model.arch.width)
    if cfg.model.autoregressive.body == "pixelcnn":
        return f"{cfg.model.arch.width} (PixelCNN, depth {cfg.model.arch.depth})"
    if cfg.model.autoregressive.body == "made":
        return f"{cfg.model.arch.width} (MADE, depth {cfg.model.arch.depth})"
    return f"{cfg.model.arch.d_model} (transformer, {cfg.model.arch.layers} layers)"


def penalty_shown(spec) -> str | None:
    """'GP 1' (WGAN-GP's) or 'R1 0.01', as the table's loss column names the critic's penalty."""
    if spec is None:
        return None
    return f"{'R1' if spec.name == 'r1' else 'GP'} {spec.weight:g}"


def prepare_all(store_uri: str, jobs: list[tuple]) -> None:
    """Every dataset the jobs train on (and its feature network) once, before the pool."""
    from genai.data.prepare import prepare
    from genai.storage import ArtifactStore

    store = ArtifactStore(store_uri)
    done = set()
    for _, dataset, family, loss, seed, sets in jobs:
        data = config(dataset, family, loss, seed, None, sets).data
        if data.model_dump_json() not in done:
            done.add(data.model_dump_json())
            prepare(data, store)  # and, for images, its feature network


def mean_sd(values: list[float], digits: int = 2) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def budget(rows: list[dict]) -> str:
    r = rows[0]
    steps = statistics.mean(x["steps"] for x in rows if x["steps"]) if r["steps"] else None
    shown = f"{steps:,.0f} steps" if steps else f"{r['epochs']} epochs"
    cpu = max(x["cpu_s"] for x in rows)
    return f"{shown}, batch {r['batch']}, width {r['width']} | {cpu:.0f}"


def by_loss(results: list[dict], table: dict) -> list[tuple[str, str, list[dict], list[dict]]]:
    """(family, loss shown, its rows, their metrics) in the table's order, for those measured."""
    groups = []
    for family, (_, names) in table.items():
        for loss in names:
            rows = [r for r in results if (r["family"], r["loss"]) == (family, loss)]
            if rows:
                shown = f"{loss} + {rows[0]['penalty']}" if rows[0].get("penalty") else loss
                groups.append((family, shown, rows, [r["metrics"] for r in rows]))
    return groups


def mixture_table(dataset: str, results: list[dict]) -> list[str]:
    lines = [
        f"### {dataset} (against the {results[0]['split']} split)",
        "",
        "| model | loss | modes | high-quality % | reverse KL | budget | CPU s (max) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for name, modes, hq, rkl in PUBLISHED[dataset]:
        lines.append(f"| {name} (PacGAN Table 1) | | {modes} | {hq} | {rkl} | | |")
    for family, loss, rows, m in by_loss(results, LOSSES):
        lines.append(
            f"| {family} | {loss} | {mean_sd([x['modes'] for x in m])}"
            f" | {mean_sd([100 * x['high_quality'] for x in m], 1)}"
            f" | {mean_sd([x['reverse_kl'] for x in m], 3)} | {budget(rows)} |"
        )
    floor = results[0]["floors"]
    lines.append(
        f"| real train rows (floor) | | {floor['modes']:.0f} | {100 * floor['high_quality']:.1f}"
        f" | {floor['reverse_kl']:.3f} | | |"
    )
    return [*lines, ""]


def image_row(name: str, loss: str, rows: list[dict], tail: str) -> str:
    m = [r["metrics"] for r in rows]
    ratios = [r["metrics"]["fid"] / r["floors"]["fid"] for r in rows]  # each seed's own split
    return (
        f"| {name} | {loss} | {mean_sd([x['fid'] for x in m], 1)} | {mean_sd(ratios, 1)}"
        f" | {mean_sd([x['kid'] for x in m], 2)} | {mean_sd([x['precision'] for x in m])}"
        f" | {mean_sd([x['recall'] for x in m])} | {tail} |"
    )


def digits_table(results: list[dict], dataset: str = "digits", baseline=()) -> list[str]:
    """The image table: digits (500 samples, each recipe's own sampler) or a 32x32 colour set
    (``IMAGE_SAMPLES`` with evaluate's fast sampler, the body named, evaluate's seconds)."""
    colour = dataset in IMAGES_32
    n = f"{IMAGE_SAMPLES} samples ({IMAGE_SAMPLER} sampler)" if colour else "500 samples"
    head = "| family | loss | FID | FID / floor | KID | precision | recall | budget | CPU s (max) |"
    lines = [
        f"### {dataset} ({n} against the {results[0]['split']} split, domain feature network's"
        " space)",
        "",
        head + (" evaluate s (max) |" if colour else ""),
        "|---|---|---:|---:|---:|---:|---:|---|---:|" + ("---:|" if colour else ""),
    ]
    if baseline:
        lines.append(image_row("pixel Gaussian (baseline)", "", list(baseline), " |"
                               + (" |" if colour else "")))  # fmt: skip
    for family, loss, rows, _ in by_loss(results, DIGITS_LOSSES):
        for body in dict.fromkeys(r["body"] for r in rows):
            mine = [r for r in rows if r["body"] == body]
            name = f"{family} ({body})" if colour else family
            tail = budget(mine)
            if colour:
                tail += f" | {max(r['evaluate_s'] for r in mine):.0f}"
            lines.append(image_row(name, loss, mine, tail))
    f = list({r["seed"]: r["floors"] for r in results}.values())  # a split per seed, a floor each
    lines.append(
        f"| real train rows (floor) | | {mean_sd([x['fid'] for x in f], 1)} | 1 |"
        f" {mean_sd([x['kid'] for x in f], 2)} | {mean_sd([x['precision'] for x in f])}"
        f" | {mean_sd([x['recall'] for x in f])} | | |" + (" |" if colour else "")
    )
    if colour:
        samplers = sorted({r["sampler"] for r in results})
        lines += ["", f"Samplers: {', '.join(samplers)}."]
    return [*lines, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="models fitted at once (1 CPU each)")
    ap.add_argument("--only", choices=["ring8", "grid25", "digits", *IMAGES_32], action="append")
    ap.add_argument(
        "--main",
        action="store_true",
        help="each family at its recipe's own loss only (not every loss it allows)",
    )
    ap.add_argument(
        "--conv",
        action="store_true",
        help="also each 32x32 recipe with today's conv body (model.arch.body=conv)",
    )
    ap.add_argument("--families", help="comma-separated families (default: all)")
    ap.add_argument("--losses", help="comma-separated losses to keep (default: every one allowed)")
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    ap.add_argument(
        "--store",
        default=None,
        help="keep the runs in this store (default: a temporary one, removed)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field for every model (a probe of a lever), e.g. train.epochs=20",
    )
    ap.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="the split samples are judged against: test (the tables), val (choosing a recipe)",
    )
    args = ap.parse_args()
    sets = tuple(args.set)
    datasets = args.only or ["ring8", "grid25", "digits"]
    families = args.families.split(",") if args.families else list(LOSSES)
    keep = set(args.losses.split(",")) if args.losses else None
    with tempfile.TemporaryDirectory() as tmp:
        store_uri = args.store or f"file://{tmp}/store"
        variants = [sets]
        if args.conv:
            variants.append((*sets, *CONV_BODY))
        jobs = [
            (store_uri, d, fam, loss, seed, v)
            for d in datasets
            for fam in families
            for loss in ([recipe_loss(d, fam)] if args.main else losses(d, fam)[1])
            if keep is None or loss in keep
            for v in (variants if d in IMAGES_32 and fam != "autoregressive" else [sets])
            for seed in range(args.seeds)
        ]
        prepare_all(store_uri, jobs)
        baselines = {
            d: [pixel_gaussian(store_uri, d, seed, args.split) for seed in range(args.seeds)]
            for d in datasets
            if d in IMAGES_32
        }
        # spawned, not forked: this process has Ray and torch threads running after prepare_all
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
            futures = [pool.submit(fit_and_judge, *job, args.split) for job in jobs]
            results = []
            for future in futures:
                results.append(future.result())
                r = results[-1]
                keys = ("dataset", "run_id", "family", "loss", "seed", "cpu_s")
                print(json.dumps({k: r[k] for k in keys}
                                 | {"metrics": r["metrics"], "floors": r["floors"]}),
                      flush=True)  # fmt: skip
    lines = []
    for dataset in datasets:
        rows = [r for r in results if r["dataset"] == dataset]
        if rows:
            if dataset in ("digits", *IMAGES_32):
                lines += digits_table(rows, dataset, baselines.get(dataset, ()))
            else:
                lines += mixture_table(dataset, rows)
    over = [r for r in results if r["cpu_s"] > BUDGETS.get(r["dataset"], BUDGET_S)]
    shown = ", ".join(f"{d} {BUDGETS.get(d, BUDGET_S):.0f} s" for d in datasets)
    lines.append(f"Models over their budget ({shown}): {len(over)} of {len(results)}.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
