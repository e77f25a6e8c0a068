"""Keras Tuner wiring shared by the tasks' `tuner_fn`s: a Bayesian search handed to TFX's Tuner."""
from __future__ import annotations

import keras_tuner
from tfx.components.tuner.component import TunerFnResult

from models.common import training
from models.common.trainer_base import DEFAULT_SEED


class WarmStartBayesianOracle(keras_tuner.oracles.BayesianOptimizationOracle):
    """Bayesian optimisation whose first trial is the search space's defaults (the task's hand-tuned
    configuration), so a small trial budget always measures it; later trials are as usual (random
    until enough points, then the Gaussian process).

    min_improvement: another trial ranks above the defaults only when its score is better by more
    than this. Short, cheap trials on a small validation split are noisy, and a margin of about one
    standard error keeps a lucky draw from replacing the defaults.
    """

    def __init__(self, *args, min_improvement: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_improvement = float(min_improvement)
        self.defaults_trial_id = None

    def populate_space(self, trial_id):
        if not self.trials:
            self.defaults_trial_id = trial_id
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING,
                    "values": self.hyperparameters.values.copy()}
        return super().populate_space(trial_id)

    def get_best_trials(self, num_trials=1):
        ranked = super().get_best_trials(len(self.trials))
        defaults = next((t for t in ranked if t.trial_id == self.defaults_trial_id), None)
        if defaults is None or defaults.score is None or ranked[0] is defaults:
            return ranked[:num_trials]
        sign = 1.0 if self.objective.direction == "max" else -1.0
        if sign * (ranked[0].score - defaults.score) <= self.min_improvement:
            ranked = [defaults] + [t for t in ranked if t is not defaults]
        return ranked[:num_trials]

    def get_state(self):
        return {**super().get_state(), "defaults_trial_id": self.defaults_trial_id,
                "min_improvement": self.min_improvement}

    def set_state(self, state):
        super().set_state(state)
        self.defaults_trial_id = state.get("defaults_trial_id")
        self.min_improvement = float(state.get("min_improvement", self.min_improvement))


def bayesian_search(fn_args, build, *, objective: str, direction: str, project: str, default_trials: int,
                    default_hparams, tf_transform_output, model_features, weight_key=None,
                    epochs: int, steps_per_epoch: int) -> TunerFnResult:
    """Bayesian optimisation of `build(hp)` on `objective`, starting from the space's defaults.

    Trials, seed and the margin a trial needs to beat the defaults (`tuner_min_improvement`) come
    from custom_config; the batch size from the task's hyperparameters, as in the Trainer
    (default_hparams < custom_config["hparams"])."""
    config = fn_args.custom_config or {}
    batch_size = int(training.task_hyperparameters(fn_args, default_hparams)["batch_size"])
    train_ds, eval_ds = training.train_and_eval_datasets(
        fn_args, tf_transform_output, batch_size, model_features, weight_key=weight_key)
    tuner = keras_tuner.Tuner(
        oracle=WarmStartBayesianOracle(
            objective=keras_tuner.Objective(objective, direction),
            max_trials=int(config.get("max_trials", default_trials)),
            seed=int(config.get("seed", DEFAULT_SEED)),
            min_improvement=float(config.get("tuner_min_improvement", 0.0)),
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
