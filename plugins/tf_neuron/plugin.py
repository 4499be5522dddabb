"""tf_neuron's record for the core (read by neuron-cc without importing TensorFlow)."""
from neuron_core.bridge.plugin import Plugin

PLUGIN = Plugin("TENSORFLOW", "TensorFlow", "tf_neuron", prefix="tf", extra="tf",
                usage="import tf_neuron; tf_neuron.saved_model.compile(model_dir, new_model_dir)",
                reader="tf_neuron.reader:read")
