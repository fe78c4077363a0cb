"""cmpi-bindings provider module kvm_providers_migration_indications.

Generated from kvm_providers/registry/table.py by `python -m kvm_providers.registry.generate`; do not edit.
cmpi-bindings loads /usr/lib/pycim/kvm_providers_migration_indications.py for the providers
registered with provider name kvm_providers_migration_indications; the providers themselves live in
the installed package, module kvm_providers.providers.migration_indications.
"""

import importlib as _importlib

_module = _importlib.import_module('kvm_providers.providers.migration_indications')
get_providers = _module.get_providers


def __getattr__(name):
    # init, shutdown, can_unload and the indication hooks, if the module has them
    return getattr(_module, name)
