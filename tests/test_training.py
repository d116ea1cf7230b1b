"""The shared training loop: learns, is deterministic, resumes, calls its hooks."""

import pytest
import torch
import torch.nn.functional as F

from artemis_core import ArtemisError
from artemis_core.learning.catalog import subset
from artemis_core.learning.training import EpochRecord, TrainConfig, crop_flip, evaluate, train
from artemis_core.learning.zoo import build_model
from artemis_core.registry import get

QUICK = TrainConfig(epochs=3, lr=0.05, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def synthetic():
    dataset = get("dataset", "synthetic")()
    return dataset.load("train"), dataset.load("test")


def _model(seed=0):
    return build_model("small-cnn", 4, (3, 8, 8), seed=seed)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_learns_synthetic_to_high_accuracy(synthetic):
    train_set, test_set = synthetic
    model = _model()
    before = evaluate(model, test_set)
    history = train(model, train_set, TrainConfig(epochs=5, lr=0.05), progress=False)
    assert [r.epoch for r in history] == [1, 2, 3, 4, 5]
    assert history[-1].loss < history[0].loss
    assert evaluate(model, test_set) >= 0.95 > before


def test_same_seed_gives_identical_weights(synthetic):
    train_set, _ = synthetic
    first, second = _model(), _model()
    train(first, train_set, QUICK, progress=False)
    train(second, train_set, QUICK, progress=False)
    assert _same(_weights(first), _weights(second))


def test_seed_changes_the_batch_order(synthetic):
    train_set, _ = synthetic
    first, second = _model(), _model()
    train(first, train_set, QUICK, progress=False)
    train(second, train_set, TrainConfig(epochs=3, lr=0.05, seed=1), progress=False)
    assert not _same(_weights(first), _weights(second))


class _Interrupt(Exception):
    pass


def _interrupt_after(epoch):
    def epoch_end(_model, record):
        if record.epoch == epoch:
            raise _Interrupt

    return epoch_end


def test_interrupted_run_resumes_to_the_uninterrupted_result(synthetic, tmp_path):
    train_set, _ = synthetic
    config = TrainConfig(epochs=4, lr=0.05, seed=3, augment=True)
    reference = _model()
    expected = train(reference, train_set, config, progress=False)

    state = tmp_path / "run.state"
    with pytest.raises(_Interrupt):
        train(_model(), train_set, config, progress=False, checkpoint_path=state,
              epoch_end=_interrupt_after(2))
    seen = []
    resumed = _model(seed=99)  # resuming must not depend on the fresh model's weights
    history = train(resumed, train_set, config, progress=False, checkpoint_path=state,
                    epoch_end=lambda _m, record: seen.append(record.epoch))
    assert seen == [3, 4]
    assert _same(_weights(resumed), _weights(reference))
    assert [(r.epoch, r.loss, r.train_accuracy, r.lr) for r in history] == \
        [(r.epoch, r.loss, r.train_accuracy, r.lr) for r in expected]


def test_finished_state_is_not_retrained(synthetic, tmp_path):
    train_set, _ = synthetic
    state = tmp_path / "run.state"
    model = _model()
    train(model, train_set, QUICK, progress=False, checkpoint_path=state)
    again = _model(seed=5)
    calls = []
    history = train(again, train_set, QUICK, progress=False, checkpoint_path=state,
                    after_backward=calls.append)
    assert calls == [] and len(history) == QUICK.epochs
    assert _same(_weights(again), _weights(model))


def test_state_of_another_config_is_refused(synthetic, tmp_path):
    train_set, _ = synthetic
    state = tmp_path / "run.state"
    train(_model(), train_set, QUICK, progress=False, checkpoint_path=state)
    with pytest.raises(ArtemisError, match="delete it"):
        train(_model(), train_set, TrainConfig(epochs=4, lr=0.05), progress=False,
              checkpoint_path=state)


def test_after_backward_runs_between_backward_and_step(synthetic):
    train_set, _ = synthetic
    model = _model()
    before = _weights(model)
    grads_seen = []

    def zero_grads(m):
        grads_seen.append(all(p.grad is not None for p in m.parameters()))
        for p in m.parameters():
            p.grad.zero_()

    config = TrainConfig(epochs=2, lr=0.1, weight_decay=0.0, batch_size=128)
    train(model, train_set, config, after_backward=zero_grads, progress=False)
    assert grads_seen == [True] * (2 * len(train_set) // 128)
    parameters = {k for k, _ in model.named_parameters()}
    after = _weights(model)
    assert all(torch.equal(before[k], after[k]) for k in parameters)


def test_cosine_schedule_ends_at_zero(synthetic):
    history = train(_model(), synthetic[0], QUICK, progress=False)
    assert history[0].lr < QUICK.lr and history[-1].lr == pytest.approx(0, abs=1e-12)
    assert all(isinstance(r, EpochRecord) for r in history)


def test_global_torch_settings_are_restored(synthetic):
    threads = torch.get_num_threads()
    train(_model(), synthetic[0], QUICK, progress=False)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_evaluate_counts_correct_predictions_and_keeps_the_mode(synthetic):
    _, test_set = synthetic
    model = _model().train()
    accuracy = evaluate(model, test_set, batch_size=100)
    assert model.training
    model.eval()
    with torch.no_grad():
        predictions = model(test_set.tensors[0]).argmax(1)
    assert accuracy == pytest.approx((predictions == test_set.tensors[1]).double().mean().item())


def test_train_subset_trains_on_the_fixed_draw_only(synthetic):
    train_set, _ = synthetic
    on_subset, on_draw, on_all = _model(), _model(), _model()
    history = train(on_subset, train_set, TrainConfig(epochs=1, train_subset=100),
                    progress=False)
    train(on_draw, subset(train_set, 100), TrainConfig(epochs=1), progress=False)
    train(on_all, train_set, TrainConfig(epochs=1), progress=False)
    assert _same(_weights(on_subset), _weights(on_draw))
    assert not _same(_weights(on_subset), _weights(on_all))
    assert len(history) == 1


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("lr", -1.0),
                                          ("train_subset", 0)])
def test_bad_config_is_refused(field, value):
    with pytest.raises(ArtemisError, match=field):
        TrainConfig(**{field: value})


def _windows(image, pad):
    padded = F.pad(image, (pad,) * 4)
    size = image.shape[-1]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            window = padded[:, dy:dy + size, dx:dx + size]
            yield (dy, dx, False), window
            yield (dy, dx, True), window.flip(-1)


def test_crop_flip_takes_a_window_of_the_padded_image_per_sample():
    images = torch.randn(40, 3, 16, 16)
    out = crop_flip(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    choices = set()
    for image, crop in zip(images, out, strict=True):
        matches = [how for how, window in _windows(image, 2) if torch.equal(window, crop)]
        assert matches
        choices.add(matches[0])
    assert len(choices) > 10 and {flip for *_, flip in choices} == {False, True}


def test_crop_flip_is_seeded():
    images = torch.randn(8, 3, 8, 8)
    first = crop_flip(images, torch.Generator().manual_seed(1))
    assert torch.equal(first, crop_flip(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, crop_flip(images, torch.Generator().manual_seed(2)))


def test_after_step_sees_every_optimiser_step_in_order(synthetic):
    train_set, _ = synthetic
    model = _model()
    seen = []
    config = TrainConfig(epochs=2, lr=0.1, batch_size=128)

    def record(m, step, total, lr):
        seen.append((step, total, lr))

    train(model, train_set, config, after_step=record, progress=False)
    total = 2 * -(-len(train_set) // 128)
    assert [s for s, _, _ in seen] == list(range(1, total + 1))
    assert {t for _, t, _ in seen} == {total}
    assert seen[0][2] == pytest.approx(0.1) and seen[-1][2] < seen[0][2]  # the step's lr
