"""Without PyTorch, ``import sklearn_ntk`` works and the torch names say how to install it."""

import subprocess
import sys
import textwrap


def test_import_without_torch():
    code = textwrap.dedent(
        """
        import sys

        class BlockTorch:  # makes `import torch` fail as if it were not installed
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError("No module named 'torch'")
                return None

        sys.meta_path.insert(0, BlockTorch())
        import sklearn_ntk
        for name in ("empirical_ntk", "EmpiricalNTKKernel", "nn", "training"):
            try:
                getattr(sklearn_ntk, name)
            except ImportError as exc:
                assert 'pip install "sklearn-ntk[torch]"' in str(exc), str(exc)
            else:
                raise AssertionError(name + " imported without torch")
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
