"""What plugin authors and users import from the top package keeps working."""

import subprocess
import sys

import artemis_core


def test_every_public_name_is_importable():
    missing = [name for name in artemis_core.__all__ if not hasattr(artemis_core, name)]
    assert not missing


def test_deployment_names_are_the_deploy_classes():
    from artemis_core.deploy.he_program import HEProgram, compile_model
    from artemis_core.deploy.inference import Client, Server

    assert (artemis_core.Client, artemis_core.Server) == (Client, Server)
    assert (artemis_core.HEProgram, artemis_core.compile_model) == (HEProgram, compile_model)


def test_plain_import_does_not_load_pyfhel():
    code = "import sys, artemis_core; print('Pyfhel' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_is_an_attribute_error():
    try:
        artemis_core.NoSuchName  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
