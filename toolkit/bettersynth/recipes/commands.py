"""``bsynth recipe run`` and ``bsynth recipe report``: Data-Juicer recipes over a seed pool.

    bsynth recipe run solution/recipes/clip_rank_recaption.yaml [--dataset IN.jsonl] [--export OUT.jsonl]
        [--image-root DIR] [--np N] [--executor default|ray [--ray-address HOST:PORT]] [--models-root DIR]
        [--skip-unchanged] [--verbose]
    bsynth recipe report OUT.jsonl

Defaults and output locations: see bettersynth.recipes.config. The export's image paths are
relative to the image root (the seed pool's layout); next to it are OUT_work/ (Data-Juicer's
logs, the resolved recipe, run.json) and OUT_report/report.html.
"""

from __future__ import annotations

from pathlib import Path


def default_export_path() -> Path:
    from bettersynth.recipes.config import default_export

    return default_export()


def run_handler(args) -> int:
    from bettersynth.recipes.config import RecipeRun
    from bettersynth.recipes.run import run_recipe

    try:
        run = RecipeRun.create(args.recipe, dataset=args.dataset, export=args.export, image_root=args.image_root,
                               models_root=args.models_root, np=args.np, executor=args.executor,
                               ray_address=args.ray_address)
    except ValueError as error:
        print(f"[recipe] {error}")
        return 2
    return run_recipe(run, verbose=args.verbose, skip_unchanged=args.skip_unchanged)


def report_handler(args) -> int:
    from bettersynth.recipes.report import ReportError, report_for_export

    try:
        report = report_for_export(args.export.resolve())
    except (FileNotFoundError, ReportError) as error:
        print(f"[recipe] {error}")
        return 1
    for row in report["ops"]:
        print(f"{row['op']:<45} {row['in']:>9} -> {row['out']:>9}")
    print(f"report: {args.export.with_name(args.export.stem + '_report') / 'report.html'}")
    return 0


def register(subparsers) -> None:
    recipe = subparsers.add_parser("recipe", help="run Data-Juicer recipes and report on their output")
    commands = recipe.add_subparsers(dest="recipe_command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run one recipe YAML over a pool (offline, no installs)",
                              description="Run a Data-Juicer recipe over a pool: offline, no run-time installs, "
                                          "export written only when complete (+ NAME_work/, NAME_report/).")
    run.add_argument("recipe", type=Path, help="a Data-Juicer recipe, e.g. solution/recipes/baseline_recaption.yaml")
    run.add_argument("--dataset", type=Path, help="input Data-Juicer jsonl (default: the seed pool, real if present)")
    run.add_argument("--export", type=Path,
                     help="output jsonl (default: output/processed_data/processed_data.jsonl)")
    run.add_argument("--image-root", type=Path, help="folder the image paths are relative to "
                     "(default: the dataset file's folder)")
    run.add_argument("--np", type=int, help="processes per operator (default: the recipe's np)")
    run.add_argument("--executor", choices=("default", "ray"), default="default",
                     help="Data-Juicer executor; with ray, the leading filters and mappers run on Ray and "
                          "the operators Ray cannot run (selectors, ...) after them on the default executor")
    run.add_argument("--ray-address", metavar="HOST:PORT",
                     help="a running Ray cluster's head (as `ray start --head` prints it; default: $RAY_ADDRESS, "
                          "else a local Ray instance of the run's own)")
    run.add_argument("--models-root", type=Path, help="folder of <org>/<name> model folders (default: "
                     "toolkit/training/model_zoo/recipe_models; the demo's for demo data when that is absent)")
    run.add_argument("--skip-unchanged", action="store_true",
                     help="reuse the export when its record shows it was made from the same recipe operators, "
                          "seed pool, operator code and models (the main job does); otherwise say what changed")
    run.add_argument("--verbose", action="store_true", help="print all of Data-Juicer's output")
    run.set_defaults(func=run_handler, outputs=lambda args: [args.export or default_export_path()])

    report = commands.add_parser("report", help="rebuild the report of a finished recipe run")
    report.add_argument("export", type=Path, help="the export of `bsynth recipe run`")
    report.set_defaults(func=report_handler)
