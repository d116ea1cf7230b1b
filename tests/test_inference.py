"""Client/server encrypted inference on real CKKS (Pyfhel), with small parameters."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from artemis_plugins.models.he_cnn import build_he_cnn
from he_models import chain
from test_he_program import reply_reveals_only_logits

from artemis_core.deploy.evaluator import from_bytes
from artemis_core.deploy.he_program import compile_model
from artemis_core.deploy.inference import Client, Server
from artemis_core.errors import BackendError
from artemis_core.he.params import HEParams
from artemis_core.learning.polyact import PolyAct
from artemis_core.registry import get

# N = 2^13 keeps key generation fast; 128-bit security needs N = 2^14 for this depth.
PARAMS = HEParams.with_depth(13, 5, allow_insecure=True)
SHAPE = (1, 4, 4)


@pytest.fixture(scope="module")
def session():
    torch.manual_seed(0)
    model = build_he_cnn(3, SHAPE, width=2).eval()
    with torch.no_grad():
        for act in (m for m in model if isinstance(m, PolyAct)):
            act.coefficients.copy_(torch.tensor([0.4, 0.6, -0.1]))
    program = compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")())
    client = Client(program.service)
    return model, program, client, Server(program, client.evaluation_keys())


def test_server_holds_no_secret_key(session):
    _, _, _, server = session
    assert server.backend.pyfhel.is_secret_key_empty()
    assert not server.backend.pyfhel.is_rotate_key_empty()


def test_server_refuses_to_decrypt_or_make_keys(session):
    _, _, client, server = session
    ct = from_bytes(server.backend, client.encrypt(torch.zeros(SHAPE))[0], PARAMS.levels)
    with pytest.raises(BackendError, match="no secret key and cannot decrypt"):
        server.backend.decrypt(ct)
    with pytest.raises(BackendError, match="cannot generate keys"):
        server.backend.keygen([1])


def test_only_the_program_rotation_keys_are_sent(session):
    _, program, client, server = session
    keys = client.evaluation_keys()
    assert keys.rotation_steps == program.service.rotation_steps
    assert len(keys.rotation_keys) == PARAMS.rotation_keys_bytes(len(keys.rotation_steps))
    assert server.backend.rotation_steps == program.op_count().rotation_steps
    missing = next(s for s in range(1, 64) if s not in server.backend.rotation_steps)
    with pytest.raises(BackendError, match=f"no rotation key for step {missing}"):
        server.backend.rotate(server.backend.encrypt(torch.ones(4).numpy()), missing)


def _exact(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return copy.deepcopy(model).double()(image[None].double())[0]


def _check_logits(model, program, client, server, images) -> None:
    """CKKS at a 40-bit scale: logits within 1e-5 of the float64 model's, relative to
    the largest logit; the executed ops are the counted ones."""
    for image in images:
        reply = server.infer(client.encrypt(image))
        logits, expected = client.decrypt(reply.outputs), _exact(model, image)
        error = float((logits - expected).abs().max() / expected.abs().max())
        assert error < 1e-5, (logits, expected)
        assert reply.ops == program.op_count()
        assert reply.ops_by_level == program.op_count_by_level()


def test_encrypted_logits_match_plaintext_logits(session):
    model, program, client, server = session
    images = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(1))
    _check_logits(model, program, client, server, images)


def test_a_narrowing_network_classifies_exactly_on_ckks():
    # conv 1->8, conv 8->2 stride 2, linear 2->3: the second conv and the classifier narrow
    model = chain([8, 2], [1, 2], 3, seed=4)
    program = compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")())
    client = Client(program.service)
    server = Server(program, client.evaluation_keys())
    images = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(2))
    _check_logits(model, program, client, server, images)


def test_the_reply_decrypts_to_zero_outside_the_logits(session):
    _, _, client, server = session
    image = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(3))
    slots = np.stack(client.decrypt_slots(server.infer(client.encrypt(image)).outputs))
    logits = client.service.read_logits(list(slots))
    reply_reveals_only_logits(slots, logits, tol=1e-6 * max(float(logits.abs().max()), 1.0))


def test_models_that_would_not_fit_in_memory_are_refused_before_any_key(session, monkeypatch):
    from artemis_core.deploy import engine as engines
    from artemis_core.deploy.session import held_bytes
    from artemis_core.errors import ArtemisError

    model, program = session[0], session[1]
    held = held_bytes(program)
    keys = 3 * len(program.service.rotation_steps) * PARAMS.rotation_key_bytes
    assert held > keys > 0  # keys, and the weights on top
    artemis = get("engine", "artemis")({"log_n": 13, "allow_insecure": True})
    assert artemis.held_bytes(model, SHAPE) == held  # the engine compiles the same program
    pages = {"SC_PAGE_SIZE": 4096, "SC_AVPHYS_PAGES": held // 4096 + 1}
    monkeypatch.setattr(engines.os, "sysconf", pages.__getitem__)
    engines.check_memory([held])  # one fits
    monkeypatch.setattr(artemis, "compile", lambda *args: pytest.fail("compiled"))
    images = torch.zeros(1, *SHAPE)
    with pytest.raises(ArtemisError, match=r"2 models side by side would hold about .* GB"):
        engines.run_engine(artemis, [("a", model), ("b", model)], images,
                           torch.zeros(1, dtype=torch.long), images, progress=False)
