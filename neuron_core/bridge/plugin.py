"""The record each framework plugin exposes, and how the core finds the plugins: by module name.

A plugin is a top-level package named `<something>_neuron` whose `plugin.py` defines `PLUGIN`, a
`Plugin` record. `plugin.py` imports nothing but `neuron_core`, so the records of every installed
plugin are read without importing a framework (neuron-cc reads them to know its `--framework`
values); the conversion table behind a record is imported only when asked for.

    # plugins/torch_neuron/plugin.py
    PLUGIN = Plugin("PYTORCH", "PyTorch", "torch_neuron", prefix="aten", extra="torch",
                    usage="import torch_neuron; torch.neuron.trace(model, example_inputs)")

    find("pytorch").supported_operators()      # the ATen ops torch_neuron converts
"""
from __future__ import annotations

import importlib
import json
import importlib.metadata
import logging
import importlib.util
import os
import pkgutil
from dataclasses import dataclass

from ..errors import NeffFormatError, NeuronError

log = logging.getLogger("Neuron")

#: what names a plugin package, and the file in it that holds its record
SUFFIX = "_neuron"
RECORD = "plugin.py"
DISTRIBUTION = "neuron-sim"


@dataclass(frozen=True)
class Plugin:
    """One framework plugin.

    Attributes:
        framework: the framework's one name: the `neuron-cc --framework` value, and what the
            plugin's NEFFs record as their framework.
        title: how prose names the framework ("PyTorch op 'x' has no Neuron conversion").
        module: the plugin's package.
        prefix: the opaque op-type prefix of native ops with no conversion ("aten::...").
        extra: the pip extra that brings the framework.
        usage: how a model of this framework is compiled (shown where neuron-cc cannot).
        table: "module:attribute" of the plugin's ConversionTable, imported on demand.
        reader: "module:function" that reads this framework's model files for `neuron-cc compile`
            (`function(paths: list[str], io_config: dict | None) -> ir.Graph`, the whole model
            as one graph); "" when neuron-cc cannot read them.
    """

    framework: str
    title: str
    module: str
    prefix: str
    extra: str
    usage: str
    table: str = ""
    reader: str = ""

    def conversion_table(self):
        """The plugin's ConversionTable (imports the plugin's conversion rules and framework)."""
        where, _, attr = (self.table or f"{self.module}.convert:TABLE").partition(":")
        try:
            return getattr(importlib.import_module(where), attr)
        except ImportError as exc:
            raise NeuronError(f"--framework {self.framework} needs the {self.module} plugin and "
                              f"its framework, which did not import ({exc}); install them with "
                              f"pip install -e '.[{self.extra}]'") from None

    def read_model(self, paths: list[str], io_config: dict | None):
        """The IR graph of the model in `paths`, read by the plugin's reader (imports the
        framework); NeuronError when the plugin has none."""
        if not self.reader:
            raise NeuronError(f"neuron-cc compile does not read {self.title} files; compile the "
                              f"model from Python by its plugin: {self.usage} (or export it to "
                              "ONNX and use --framework ONNX)")
        where, _, attr = self.reader.partition(":")
        try:
            read = getattr(importlib.import_module(where), attr)
        except ImportError as exc:
            raise NeuronError(f"--framework {self.framework} needs the {self.module} plugin and "
                              f"its framework, which did not import ({exc}); install them with "
                              f"pip install -e '.[{self.extra}]'") from None
        return read(list(paths), io_config)

    def supported_operators(self) -> list[str]:
        """The native op names the plugin converts, sorted (derived from its table)."""
        return self.conversion_table().supported()


def _candidates() -> list[str]:
    """Top-level modules named *_neuron: those on sys.path, and the top-level names of this
    package's own distribution (an editable install maps those through an import hook that
    sys.path listings do not see)."""
    names = {m.name for m in pkgutil.iter_modules() if m.name.endswith(SUFFIX)}
    try:
        top = importlib.metadata.distribution(DISTRIBUTION).read_text("top_level.txt") or ""
    except importlib.metadata.PackageNotFoundError:
        top = ""
    names.update(n for n in top.split() if n.endswith(SUFFIX))
    return sorted(names)


def _record(name: str) -> Plugin | None:
    """The PLUGIN record of package `name`, read from its plugin.py without importing the
    package (whose __init__ imports the framework); None if it holds no record."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, RECORD)
        if os.path.isfile(path):
            record_spec = importlib.util.spec_from_file_location(f"_neuron_plugin_{name}", path)
            module = importlib.util.module_from_spec(record_spec)
            try:
                record_spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - one broken package must not hide the rest
                log.warning("%s has a plugin record that does not load (%s: %s); it is skipped",
                            path, type(exc).__name__, exc)
                return None
            record = getattr(module, "PLUGIN", None)
            return record if isinstance(record, Plugin) else None
    return None


def plugins() -> dict[str, Plugin]:
    """framework name -> Plugin for every plugin found, by module name."""
    found: dict = {}
    for name in _candidates():
        record = _record(name)
        if record is not None:
            found.setdefault(record.framework, record)
    return found


def find(framework: str) -> Plugin:
    """The plugin of `framework` (any case), or NeuronError naming the frameworks found."""
    found = plugins()
    record = found.get(framework.upper())
    if record is None:
        raise NeuronError(f"no plugin for framework {framework!r}; plugins found: "
                          f"{', '.join(sorted(found)) or 'none'}")
    return record


def parse_node_config(text, what: str, fix: str) -> dict:
    """The JSON object a plugin's compiled node keeps as its config (`what` names it, `fix` says
    what to do); NeffFormatError when the text is not JSON or not an object."""
    try:
        config = json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise NeffFormatError(f"{what} is not JSON ({exc}); {fix}") from None
    if not isinstance(config, dict):
        raise NeffFormatError(f"{what} must be a JSON object, got {type(config).__name__}; {fix}")
    return config
