"""The PyTorch plugin of neuron-sim. Not available in this release: only the framework-free core
(`neuron_core`, `neuron-cc`, ONNX models) is. Importing it says so instead of failing later."""
from __future__ import annotations

from neuron_core.errors import NeuronError

raise NeuronError("torch_neuron: the PyTorch plugin is not available in this release of neuron-sim; "
                  "export the model to ONNX and use `neuron-cc compile MODEL --framework ONNX` "
                  "or neuron_core.runtime instead")
