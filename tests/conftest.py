"""BenchMARL pins an older TorchRL than the main test venv's, so tests/test_benchmarl.py runs in its own
venv (``make test`` builds ``.venv-benchmarl`` and runs that file there). The main venv does not collect it;
naming the file explicitly still runs it, so a broken BenchMARL venv fails loudly."""
import importlib.util

collect_ignore = [] if importlib.util.find_spec("benchmarl") else ["test_benchmarl.py"]
