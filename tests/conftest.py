"""BenchMARL pins an older TorchRL than the main test venv's, so tests/test_benchmarl.py runs in its own
venv (``make test`` builds ``.venv-benchmarl`` and runs that file there). The main venv does not collect it;
naming the file explicitly still runs it, so a broken BenchMARL venv fails loudly.

``make test`` runs the suite on 2 pytest-xdist workers (one per core). Each worker then keeps torch's and the
BLAS/numba thread pools to one thread: a pool sized to every core collapses 10-40x when the other worker holds
a core. Set before any test module imports torch or numba."""
import importlib.util
import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

collect_ignore = [] if importlib.util.find_spec("benchmarl") else ["test_benchmarl.py"]


@pytest.fixture(autouse=True, scope="session")
def sb3_log_folder(tmp_path_factory):
    """stable-baselines3 makes an empty folder tempdir/SB3-<date-time> for every model it trains without
    tensorboard unless $SB3_LOGDIR names one: point it into pytest's temp folder, so tests leave nothing
    outside their temp folders."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3_logs")))
        yield


@pytest.fixture
def cli_error(capsys):
    """``cli_error(argv)``: the stderr of ``p2penv.cli.main(argv)``, which must exit with status 2 and print no
    traceback (the error is its last line; argparse may print its usage above it)."""
    from p2penv import cli

    def run(argv) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err

    return run
