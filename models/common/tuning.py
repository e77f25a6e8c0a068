"""Keras Tuner wiring shared by the tasks' `tuner_fn`s: a Bayesian search handed to TFX's Tuner."""
from __future__ import annotations

import keras_tuner
from tfx.components.tuner.component import TunerFnResult

from models.common import training


class WarmStartBayesianOracle(keras_tuner.oracles.BayesianOptimizationOracle):
    """Bayesian optimisation whose first trial is the search space's defaults (the task's hand-tuned
    configuration), so a small trial budget always measures it; later trials are as usual (random
    until enough points, then the Gaussian process)."""

    def populate_space(self, trial_id):
        if not self.trials:
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING,
                    "values": self.hyperparameters.values.copy()}
        return super().populate_space(trial_id)


def bayesian_search(fn_args, build, objective: str, direction: str, project: str, default_trials: int,
                    train_ds, eval_ds, epochs: int, steps_per_epoch: int) -> TunerFnResult:
    """Bayesian optimisation of `build(hp)` on `objective`, starting from the space's defaults;
    trials and seed from custom_config."""
    config = fn_args.custom_config or {}
    tuner = keras_tuner.Tuner(
        oracle=WarmStartBayesianOracle(
            objective=keras_tuner.Objective(objective, direction),
            max_trials=int(config.get("max_trials", default_trials)),
            seed=int(config.get("seed", 42)),
        ),
        hypermodel=build,
        directory=fn_args.working_dir,
        project_name=project,
        overwrite=True,
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train_ds,
            "validation_data": training.validation_set(eval_ds, fn_args.eval_steps),
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "verbose": 0,
        },
    )
