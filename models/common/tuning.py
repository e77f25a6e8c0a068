"""Keras Tuner wiring shared by the tasks' `tuner_fn`s: a Bayesian search handed to TFX's Tuner."""
from __future__ import annotations

import keras_tuner
from tfx.components.tuner.component import TunerFnResult


def bayesian_search(fn_args, build, objective: str, direction: str, project: str, default_trials: int,
                    train_ds, eval_ds, epochs: int, steps_per_epoch: int) -> TunerFnResult:
    """Bayesian optimisation of `build(hp)` on `objective`; trials and seed from custom_config."""
    config = fn_args.custom_config or {}
    tuner = keras_tuner.BayesianOptimization(
        build,
        objective=keras_tuner.Objective(objective, direction),
        max_trials=int(config.get("max_trials", default_trials)),
        seed=int(config.get("seed", 42)),
        directory=fn_args.working_dir,
        project_name=project,
        overwrite=True,
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train_ds,
            "validation_data": eval_ds,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "validation_steps": max(1, fn_args.eval_steps),
            "verbose": 0,
        },
    )
