"""Experiments: a record per run, a table of all runs, bootstrap statistics, an HTML report (issue 19).

    bsynth runs record EXP_NAME --editable KEY=VALUE ... [--made STEP=PATH ...] [--data-root DIR]
    bsynth runs [--json|--csv] [--reference EXP]
    bsynth report RUN... [--group-by settings|recipe] [--reference EXP] --out report.html

Modules: ``record`` (output/experiments/<EXP_NAME>/run.json), ``record_schema`` (the shape a record must
have to be read), ``stages`` (a training stage folder's progress), ``scores`` (per-question eval
results), ``runs`` (the table), ``stats`` (bootstrap), ``groups`` (which runs differ only by seed;
per-question matrices), ``plots`` and ``report`` (the page), ``sweep_file`` (reading and checking a
sweep file), ``sweep`` and ``scheduler`` (running it), ``defaults`` (shared defaults, no numpy),
``commands`` (the CLI).
"""
