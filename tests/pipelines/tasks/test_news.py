"""news: the declaration and its profiles (no pipeline run; see tests/e2e/test_news.py; the model
code and the importer are tested in tests/models/news/)."""
from pipelines.tasks import load_task, profiles


def test_default_profile_tunes_the_transformer_and_minilm_fine_tunes_without_a_tuner():
    default, minilm = load_task("news"), load_task("news", "minilm")
    assert set(profiles("news")) == {"default", "minilm"}
    assert default.tuner_fn == "models.news.tuner.tuner_fn" and default.run_fn == "models.news.trainer.run_fn"
    assert minilm.tuner_fn is None and minilm.run_fn == "models.news.minilm.run_fn"
    assert minilm.custom_op_modules == ("tensorflow_text",) and not default.custom_op_modules
    assert default.class_names == ("World", "Sports", "Business", "Sci/Tech")
    assert minilm.eval == default.eval and minilm.example_gen_args == default.example_gen_args
    assert set(default.example_gen_args["splits"]) == {"train", "validation", "test"}
