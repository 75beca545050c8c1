"""Tests for util/optimizer.py: Adam vs numpy, Inf/NaN skipping, mirrored replicas."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from util.optimizer import Adam

LR, BETA1, BETA2, EPSILON = 0.01, 0.9, 0.999, 1e-8


def numpy_adam(params, grads_per_step, lr=LR, beta1=BETA1, beta2=BETA2, eps=EPSILON):
    """Adam as TF1's AdamOptimizer computed it (bias correction in the rate)."""
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, 1):
        lr_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
        for k, g in enumerate(grads):
            m[k] = beta1 * m[k] + (1 - beta1) * g
            v[k] = beta2 * v[k] + (1 - beta2) * g * g
            params[k] = params[k] - lr_t * m[k] / (np.sqrt(v[k]) + eps)
    return params, m, v


def make_problem(seed: int = 0, n_steps: int = 5):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=[3, 4]), rng.normal(size=[4])]
    params = [p.astype(np.float32) for p in params]
    grads = [
        [rng.normal(size=p.shape).astype(np.float32) for p in params]
        for _ in range(n_steps)
    ]
    return params, grads


def test_matches_numpy_reference_for_5_steps():
    params, grads = make_problem()
    variables = [tf.Variable(p) for p in params]
    optimizer = Adam(variables, LR, BETA1, BETA2, EPSILON)
    for step_grads in grads:
        applied = optimizer.apply([tf.constant(g) for g in step_grads], variables)
        assert bool(applied)
    expected, m, v = numpy_adam(params, grads)
    for var, want in zip(variables, expected):
        np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)
    for slot, want in zip(optimizer.m + optimizer.v, m + v):
        np.testing.assert_allclose(slot.numpy(), want, rtol=1e-5, atol=1e-7)
    assert int(optimizer.iterations.numpy()) == 5


def test_matches_numpy_inside_tf_function():
    params, grads = make_problem(seed=1, n_steps=3)
    variables = [tf.Variable(p) for p in params]
    optimizer = Adam(variables, LR)
    step = tf.function(lambda g: optimizer.apply(g, variables))
    for step_grads in grads:
        step([tf.constant(g) for g in step_grads])
    expected, _, _ = numpy_adam(params, grads)
    for var, want in zip(variables, expected):
        np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)


def test_learning_rate_is_a_variable_that_takes_effect():
    params, grads = make_problem(seed=2, n_steps=2)
    variables = [tf.Variable(p) for p in params]
    optimizer = Adam(variables, LR)
    optimizer.learning_rate.assign(LR / 10)
    for step_grads in grads:
        optimizer.apply([tf.constant(g) for g in step_grads], variables)
    expected, _, _ = numpy_adam(params, grads, lr=LR / 10)
    np.testing.assert_allclose(variables[0].numpy(), expected[0], rtol=1e-5, atol=1e-6)


def test_non_finite_gradient_changes_nothing():
    params, grads = make_problem(seed=3, n_steps=1)
    variables = [tf.Variable(p) for p in params]
    optimizer = Adam(variables, LR)
    optimizer.apply([tf.constant(g) for g in grads[0]], variables)  # non-zero slots
    before = [x.numpy().copy() for x in variables + optimizer.m + optimizer.v]
    for bad_value in (np.nan, np.inf):
        bad = [g.copy() for g in grads[0]]
        bad[1][2] = bad_value
        applied = optimizer.apply([tf.constant(g) for g in bad], variables)
        assert not bool(applied)
        after = [x.numpy() for x in variables + optimizer.m + optimizer.v]
        for b, a in zip(before, after):
            np.testing.assert_array_equal(a, b)
        assert int(optimizer.iterations.numpy()) == 1


MIRRORED_SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf
from util.distributed import make_strategy, split_cpu
from util.optimizer import Adam

split_cpu(2)
rng = np.random.default_rng(0)
init = [rng.normal(size=s).astype(np.float32) for s in ([3, 4], [4])]
# grads[step][replica][variable]; the last step has a NaN on replica 1 only.
grads = rng.normal(size=[4, 2, 16]).astype(np.float32)
grads[3, 1, 5] = np.nan
def split(flat):
    return [tf.reshape(flat[:12], [3, 4]), flat[12:]]

def mirrored():
    strategy = make_strategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        variables = [tf.Variable(p) for p in init]
        optimizer = Adam(variables, 0.01)

    @tf.function
    def step(g):
        def replica():
            rid = tf.distribute.get_replica_context().replica_id_in_sync_group
            return optimizer.apply(split(tf.gather(g, rid)), variables)
        return strategy.experimental_local_results(strategy.run(replica))

    applied = [[bool(a) for a in step(tf.constant(g))] for g in grads]
    copies = [[v.numpy().tolist() for v in strategy.experimental_local_results(var)]
              for var in variables]
    return applied, copies, int(optimizer.iterations.numpy())

def single():
    variables = [tf.Variable(p) for p in init]
    optimizer = Adam(variables, 0.01)
    applied = [bool(optimizer.apply(split(g[0] + g[1]), variables)) for g in grads]
    values = [v.numpy().tolist() for v in variables]
    return applied, values, int(optimizer.iterations.numpy())

print(json.dumps({"mirrored": mirrored(), "single": single()}))
"""


def test_mirrored_over_two_cpus_equals_single_device(run_python):
    """Each replica's gradient is summed (one all-reduce) and applied to every copy."""
    out = json.loads(run_python(MIRRORED_SCRIPT).stdout.strip().splitlines()[-1])
    m_applied, m_copies, m_iterations = out["mirrored"]
    s_applied, s_values, s_iterations = out["single"]
    assert s_applied == [True, True, True, False]
    assert m_applied == [[a, a] for a in s_applied]  # both replicas agree
    assert m_iterations == s_iterations == 3
    for copies, want in zip(m_copies, s_values):
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0], copies[1])
        np.testing.assert_allclose(copies[0], want, rtol=1e-6, atol=1e-6)


def test_schedule_warmup_is_linear_then_constant():
    from util.optimizer import scheduled_learning_rate as lr

    assert [lr(s, 1.0, 100, warmup_steps=4) for s in range(6)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    )
    assert lr(0, 0.5, 100) == 0.5  # no warm-up, no decay: DeepSpeech 0.9's constant


def test_schedule_cosine_runs_from_base_to_floor():
    from util.optimizer import scheduled_learning_rate as lr

    kw = dict(base=2.0, total_steps=110, warmup_steps=10, decay="cosine", floor=0.1)
    assert lr(10, **kw) == pytest.approx(2.0)  # first step after warm-up
    assert lr(60, **kw) == pytest.approx(0.2 + 1.8 * 0.5)  # half way: the mean
    assert lr(110, **kw) == pytest.approx(0.2)
    assert lr(500, **kw) == pytest.approx(0.2)  # past the end it stays at the floor
    values = [lr(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_schedule_exponential_is_geometric():
    from util.optimizer import scheduled_learning_rate as lr

    kw = dict(base=1.0, total_steps=100, decay="exponential", floor=0.01)
    assert lr(50, **kw) == pytest.approx(0.1)
    assert lr(100, **kw) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="floor"):
        lr(1, 1.0, 100, decay="exponential", floor=0.0)
    with pytest.raises(ValueError, match="unknown"):
        lr(1, 1.0, 100, decay="linear")
