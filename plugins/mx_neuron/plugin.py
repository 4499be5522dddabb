"""mx_neuron's record for the core (read by neuron-cc without importing MXNet)."""
from neuron_core.bridge.plugin import Plugin

PLUGIN = Plugin("MXNET", "MXNet", "mx_neuron", prefix="mxnet", extra="mx",
                usage="import mx_neuron; mx_neuron.compile(sym, args, aux, inputs)",
                reader="mx_neuron.reader:read_checkpoint")
