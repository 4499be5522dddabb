"""torch_neuron's record for the core (read by neuron-cc without importing torch)."""
from neuron_core.bridge.plugin import Plugin

PLUGIN = Plugin("PYTORCH", "PyTorch", "torch_neuron", prefix="aten", extra="torch",
                usage="import torch_neuron; torch.neuron.trace(model, example_inputs)")
