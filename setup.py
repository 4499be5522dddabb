"""Packaging beyond setup.cfg: ship `neuron_sim_hooks.pth` (see neuron_sim_hooks.py) in the wheel
and in the editable wheel alike, so `pip install .` and `pip install -e .` both make the Neuron
SDK's import lines (`import torch.neuron`, `import tensorflow.neuron`, `import mxnet`) work."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "neuron_sim_hooks.pth"
#: the .pth line: a line starting with `import` runs at interpreter start; this one imports the
#: hooks module, and does nothing when it is not there
PTH_LINE = 'import sys; exec("try:\\n import neuron_sim_hooks\\nexcept ImportError:\\n pass")\n'



class BuildPyWithHooks(build_py):
    """The regular wheel: the .pth beside the modules, at the root of site-packages."""

    def run(self):
        super().run()
        with open(os.path.join(self.build_lib, PTH), "w") as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


class _StrategyWithHooks:
    """An editable-install strategy that also writes the .pth into the editable wheel."""

    def __init__(self, inner):
        self.inner = inner

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def __call__(self, wheel, files, mapping):
        self.inner(wheel, files, mapping)
        wheel.writestr(PTH, PTH_LINE)


class EditableWheelWithHooks(editable_wheel):
    """The editable wheel: setuptools' own strategy (a finder that maps the packages to this
    tree), plus the .pth."""

    def _select_strategy(self, name, tag, build_lib):
        return _StrategyWithHooks(super()._select_strategy(name, tag, build_lib))


setup(cmdclass={"build_py": BuildPyWithHooks, "editable_wheel": EditableWheelWithHooks})
